//! Page parameters (`?page=1&per_page=50`) and the paged response envelope.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

/// Largest page a client may ask for.
pub const MAX_PER_PAGE: i64 = 100;

/// Query parameters of a paged list.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(default)]
pub struct PageParams {
    pub page: i64,
    pub per_page: i64,
}

impl Default for PageParams {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: 50,
        }
    }
}

impl PageParams {
    /// `(limit, offset)` after checking the bounds.
    ///
    /// # Errors
    /// 400 for a page below 1 or a page size outside 1..=100.
    pub fn limit_offset(self) -> AppResult<(i64, i64)> {
        if self.page < 1 || self.page > 1_000_000 {
            return Err(AppError::Validation(
                "page must be between 1 and 1000000".into(),
            ));
        }
        if !(1..=MAX_PER_PAGE).contains(&self.per_page) {
            return Err(AppError::Validation(format!(
                "per_page must be between 1 and {MAX_PER_PAGE}"
            )));
        }
        Ok((self.per_page, (self.page - 1) * self.per_page))
    }
}

/// `{"data": [...], "pagination": {...}}`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub pagination: PageInfo,
}

/// Where a page sits.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PageInfo {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

impl<T> Page<T> {
    /// Wraps one page of `data` out of `total`.
    pub fn new(data: Vec<T>, params: PageParams, total: i64) -> Self {
        Self {
            data,
            pagination: PageInfo {
                page: params.page,
                per_page: params.per_page,
                total,
            },
        }
    }
}
