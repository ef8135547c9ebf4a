//! NumPy arrays in: an update (1-D) or records (2-D), as `f32` values for the SDK.
//!
//! A C-contiguous `float32` array is borrowed without a copy; a `float64` array (or a
//! strided `float32` one) is converted once into a new `f32` buffer. Any other dtype,
//! shape or type is a `ValueError` naming what was given, raised before anything is
//! prepared or sent. Finiteness and the dimension are checked by the SDK, which refuses
//! the update before sending (also a `ValueError`).

use std::borrow::Cow;

use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Values borrowed from a `float32` array or converted from a `float64` one.
///
/// Holds the NumPy read-only borrow while the values are in use, so no other Rust code
/// may write the array meanwhile (Python code that writes the array from another thread
/// during a submission races with it, as with any C extension that releases the GIL).
pub enum F32Values<'py> {
    /// Borrowed from a contiguous `float32` array.
    Borrowed(PyReadonlyArray1<'py, f32>),
    /// Borrowed from a contiguous 2-D `float32` array.
    Borrowed2(PyReadonlyArray2<'py, f32>),
    /// Converted (or copied from a strided array).
    Owned(Vec<f32>),
}

impl F32Values<'_> {
    /// The values, row-major.
    pub fn as_slice(&self) -> Cow<'_, [f32]> {
        match self {
            F32Values::Borrowed(a) => match a.as_slice() {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
            },
            F32Values::Borrowed2(a) => match a.as_slice() {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
            },
            F32Values::Owned(v) => Cow::Borrowed(v),
        }
    }
}

fn describe(value: &Bound<'_, PyAny>) -> String {
    match value.cast::<numpy::PyUntypedArray>() {
        Ok(a) => format!("an array of dtype {} and shape {:?}", a.dtype(), a.shape()),
        Err(_) => format!(
            "a {}",
            value
                .get_type()
                .name()
                .map_or_else(|_| "value".to_owned(), |n| n.to_string())
        ),
    }
}

/// A 1-D `float32` or `float64` array.
///
/// # Errors
/// `ValueError` for anything else.
pub fn update<'py>(value: &Bound<'py, PyAny>) -> PyResult<F32Values<'py>> {
    if let Ok(a) = value.extract::<PyReadonlyArray1<'py, f32>>() {
        return Ok(F32Values::Borrowed(a));
    }
    if let Ok(a) = value.extract::<PyReadonlyArray1<'py, f64>>() {
        return Ok(F32Values::Owned(
            a.as_array().iter().map(|v| *v as f32).collect(),
        ));
    }
    Err(PyValueError::new_err(format!(
        "the update must be a 1-D numpy array of float32 or float64, got {}",
        describe(value)
    )))
}

/// A 2-D `float32` or `float64` array of records (one row per record); returns the
/// values row-major and the number of columns.
///
/// # Errors
/// `ValueError` for anything else.
pub fn records<'py>(value: &Bound<'py, PyAny>) -> PyResult<(F32Values<'py>, usize)> {
    if let Ok(a) = value.extract::<PyReadonlyArray2<'py, f32>>() {
        let columns = a.shape()[1];
        return Ok((F32Values::Borrowed2(a), columns));
    }
    if let Ok(a) = value.extract::<PyReadonlyArray2<'py, f64>>() {
        let columns = a.shape()[1];
        return Ok((
            F32Values::Owned(a.as_array().iter().map(|v| *v as f32).collect()),
            columns,
        ));
    }
    Err(PyValueError::new_err(format!(
        "records must be a 2-D numpy array (one row per record) of float32 or float64, got {}",
        describe(value)
    )))
}
