//! Unsigned integer arguments: a value out of range is `ValueError`.
//!
//! PyO3 raises `OverflowError` for a negative or too large `int` given to an unsigned
//! parameter. The API raises `ValueError` for every bad value (and `OverflowError` is
//! not one: `except ValueError` would miss it, as the Flower mod's did), so the
//! parameters that take rounds, counts and sizes are [`Unsigned`].

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::prelude::*;

/// An unsigned integer argument whose out-of-range values raise `ValueError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsigned<T>(pub T);

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl<'a, 'py> FromPyObject<'a, 'py> for Unsigned<$t> {
            type Error = PyErr;

            fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
                match obj.extract::<$t>() {
                    Ok(v) => Ok(Unsigned(v)),
                    Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
                        Err(PyValueError::new_err(format!(
                            "{} is out of range: an integer from 0 to {} is needed",
                            &*obj,
                            <$t>::MAX
                        )))
                    }
                    Err(e) => Err(e),
                }
            }
        }
    )*};
}

unsigned!(u32, u64, usize);
