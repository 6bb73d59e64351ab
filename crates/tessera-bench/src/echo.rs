//! An echo API for `bench/bff.sh`: answers every request with its method, path and
//! whether it carried an `Authorization` header, the same small JSON body direct or
//! through the BFF.

use axum::http::{HeaderMap, Method, Uri};
use serde_json::json;

#[derive(clap::Args)]
pub struct EchoArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: String,
}

pub async fn run(args: &EchoArgs) -> Result<(), String> {
    let app = axum::Router::new().fallback(|method: Method, uri: Uri, headers: HeaderMap| async move {
        axum::Json(json!({
            "method": method.as_str(),
            "path": uri.path(),
            "authorization": headers.contains_key("authorization"),
        }))
    });
    let listener =
        tokio::net::TcpListener::bind(&args.listen).await.map_err(|e| format!("{}: {e}", args.listen))?;
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
