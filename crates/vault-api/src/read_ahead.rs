//! Reading request bodies before routing: an answer given without reading the body (bad
//! api-version, missing token, RBAC denial, unknown path, 405, ...) would leave it unread, and
//! hyper then closes the connection after the response, so a client still sending, or reusing
//! the connection, sees it reset instead of the Azure error (schemathesis found this). Bodies
//! that declare a length up to [`READ_AHEAD_LIMIT`] are read first; larger or chunked ones
//! stream to the route, whose body limit answers 413.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The largest body read before routing: every route's limit but restore's (256 KiB).
pub const READ_AHEAD_LIMIT: usize = 256 * 1024;

/// Middleware: reads a body of declared length up to [`READ_AHEAD_LIMIT`], then routes.
pub(crate) async fn read_body_first(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if !declared.is_some_and(|n| n > 0 && n <= READ_AHEAD_LIMIT) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, READ_AHEAD_LIMIT).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request body could not be read (too large or incomplete).",
        )
        .into_response(),
    }
}
