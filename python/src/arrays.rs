//! NumPy arrays in: an update (1-D) or records (2-D), as `f32` values for the SDK.
//!
//! The values are copied into a buffer of our own while the GIL is held, in the array's
//! logical (row-major) order, and only then is the GIL released for the work. Borrowing
//! the array's memory across the GIL release would race with any Python thread writing
//! (or resizing) the array meanwhile — undefined behaviour, not a mere caveat — and the
//! copy costs one pass over `d` floats, next to a proof that costs thousands of times
//! more (`python -m cairn.bench`). A C-contiguous `float32` array is copied with one
//! `memcpy`; a Fortran-ordered, strided or `float64` array element by element in
//! logical order (a Fortran-ordered block read as memory would scramble its rows). The
//! copy is wiped when dropped.
//!
//! Any other dtype, shape or type is a `ValueError` naming what was given, raised
//! before anything is prepared or sent, and so is a length (or a row length) other than
//! the task's dimension, before the array is copied. Finiteness is checked by the
//! SDK, which refuses the update before sending (also a `ValueError`).

use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use zeroize::Zeroizing;

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

/// Refuses an update whose length is not the task's dimension before it is copied: a
/// wrongly shaped huge array must not be duplicated first (an allocation failure
/// aborts the process, past any exception).
fn check_len(len: usize, dimension: usize) -> PyResult<()> {
    if len == dimension {
        return Ok(());
    }
    Err(PyValueError::new_err(format!(
        "the update has {len} values, the task's dimension is {dimension}"
    )))
}

/// A 1-D `float32` or `float64` array of `dimension` values, copied (module docs).
///
/// # Errors
/// `ValueError` for anything else.
pub fn update(value: &Bound<'_, PyAny>, dimension: usize) -> PyResult<Zeroizing<Vec<f32>>> {
    if let Ok(a) = value.extract::<PyReadonlyArray1<'_, f32>>() {
        check_len(a.len(), dimension)?;
        return Ok(Zeroizing::new(match a.as_slice() {
            // A 1-D contiguous array is the same in C and Fortran order.
            Ok(s) => s.to_vec(),
            Err(_) => a.as_array().iter().copied().collect(),
        }));
    }
    if let Ok(a) = value.extract::<PyReadonlyArray1<'_, f64>>() {
        check_len(a.len(), dimension)?;
        return Ok(Zeroizing::new(
            a.as_array().iter().map(|v| *v as f32).collect(),
        ));
    }
    Err(PyValueError::new_err(format!(
        "the update must be a 1-D numpy array of float32 or float64, got {}",
        describe(value)
    )))
}

/// Refuses records whose rows are not of the task's dimension before they are copied
/// (see [`check_len`]).
fn check_columns(columns: usize, dimension: usize) -> PyResult<()> {
    if columns == dimension {
        return Ok(());
    }
    Err(PyValueError::new_err(format!(
        "each record must have the task's dimension {dimension}, got rows of {columns}"
    )))
}

/// A 2-D `float32` or `float64` array of records (one row per record, `dimension`
/// columns), copied row-major (module docs).
///
/// # Errors
/// `ValueError` for anything else.
pub fn records(value: &Bound<'_, PyAny>, dimension: usize) -> PyResult<Zeroizing<Vec<f32>>> {
    if let Ok(a) = value.extract::<PyReadonlyArray2<'_, f32>>() {
        check_columns(a.shape()[1], dimension)?;
        let values = if a.is_c_contiguous() {
            a.as_slice()
                .map_or_else(|_| a.as_array().iter().copied().collect(), <[f32]>::to_vec)
        } else {
            a.as_array().iter().copied().collect()
        };
        return Ok(Zeroizing::new(values));
    }
    if let Ok(a) = value.extract::<PyReadonlyArray2<'_, f64>>() {
        check_columns(a.shape()[1], dimension)?;
        return Ok(Zeroizing::new(
            a.as_array().iter().map(|v| *v as f32).collect(),
        ));
    }
    Err(PyValueError::new_err(format!(
        "records must be a 2-D numpy array (one row per record) of float32 or float64, got {}",
        describe(value)
    )))
}
