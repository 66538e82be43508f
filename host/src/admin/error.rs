//! Every admin API error is JSON `{"error": "..."}` with a status that says
//! whose fault it is; the text names the connector or dead letter involved.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token (admin.token)")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn unknown_connector(connector: &str) -> ApiError {
        ApiError::NotFound(format!("no connector `{connector}` (neither configured nor holding messages)"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if let ApiError::Internal(text) = &self {
            tracing::error!(error = %text, "admin API request failed");
        }
        let body = Json(serde_json::json!({ "error": self.to_string() }));
        match self {
            ApiError::Unauthorized => (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response(),
            _ => (status, body).into_response(),
        }
    }
}
