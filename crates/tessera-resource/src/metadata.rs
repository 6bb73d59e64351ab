//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells a client
//! (an MCP client, say) which authorization server issues tokens for this resource,
//! and where that document lives.

use std::fmt;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use serde_json::json;

/// RFC 9728 §3: the well-known URI suffix the document is served under.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
/// The document changes only with the API's configuration; an hour of caching is harmless.
const CACHE_CONTROL: &str = "public, max-age=3600";

/// What a protected resource says about itself (RFC 9728 §2). Hand it to
/// [`Verifier::with_resource_metadata`](crate::Verifier::with_resource_metadata); the
/// verifier adds what it knows itself (its issuer, DPoP support).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceMetadata {
    resource: String,
    scopes_supported: Vec<String>,
    resource_name: Option<String>,
    /// `/.well-known/oauth-protected-resource` plus the resource's path (RFC 9728 §3.1).
    path: String,
    /// The document's absolute URL, named in `WWW-Authenticate` (RFC 9728 §5.1).
    url: String,
}

impl ResourceMetadata {
    /// Metadata for the resource identified by `resource` (its URL, e.g.
    /// `https://api.example.com/mcp`), offering `scopes_supported`.
    ///
    /// `resource` is kept byte for byte: RFC 9728 §3.3 has clients compare it with the
    /// URL they started from, so write it as clients will (an MCP server's URL).
    ///
    /// # Errors
    /// [`InvalidResource`] unless `resource` is an absolute `http` or `https` URL with
    /// a host and no user information, query or fragment.
    pub fn new(resource: &str, scopes_supported: &[&str]) -> Result<Self, InvalidResource> {
        let invalid = |reason| InvalidResource { resource: resource.to_owned(), reason };
        let url = url::Url::parse(resource).map_err(|_| invalid("not an absolute URL"))?;
        // RFC 9728 §1.2 asks for https; http is allowed, as for Tessera's issuer, so
        // that development setups on loopback work.
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid("not an http or https URL with a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("user information is not allowed"));
        }
        // RFC 9728 §1.2: no fragment. Stricter than §1.2 about the query (which it
        // tolerates): the document is routed by path alone.
        if url.fragment().is_some() || url.query().is_some() {
            return Err(invalid("a query or fragment is not allowed"));
        }
        // axum refuses route segments starting with `:` or `*` (its old capture syntax).
        if url.path().split('/').any(|segment| segment.starts_with([':', '*'])) {
            return Err(invalid("path segments starting with `:` or `*` cannot be routed"));
        }
        // RFC 9728 §3.1: the suffix goes between host and path; a lone `/` path is dropped.
        let path = match url.path() {
            "/" => WELL_KNOWN.to_owned(),
            resource_path => format!("{WELL_KNOWN}{resource_path}"),
        };
        Ok(Self {
            resource: resource.to_owned(),
            scopes_supported: scopes_supported.iter().map(|&scope| scope.to_owned()).collect(),
            resource_name: None,
            url: format!("{}{path}", url.origin().ascii_serialization()),
            path,
        })
    }

    /// A human-readable name for the resource, shown to users (`resource_name`,
    /// RFC 9728 §2).
    #[must_use]
    pub fn with_resource_name(mut self, name: &str) -> Self {
        self.resource_name = Some(name.to_owned());
        self
    }

    /// The resource identifier, as given.
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The path the document is served at, e.g. `/.well-known/oauth-protected-resource/mcp`.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The document's absolute URL, e.g.
    /// `https://api.example.com/.well-known/oauth-protected-resource/mcp`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The JSON document (RFC 9728 §2) for tokens of `issuer`; DPoP proofs signed with
    /// `dpop_algorithms` are accepted (none: DPoP-bound tokens are refused).
    pub(crate) fn document(&self, issuer: &str, dpop_algorithms: &[String]) -> serde_json::Value {
        let mut document = json!({
            "resource": self.resource,
            "authorization_servers": [issuer],
            // `Authenticated` reads the token from the `Authorization` header only (RFC 6750 §2.1).
            "bearer_methods_supported": ["header"],
        });
        if !self.scopes_supported.is_empty() {
            document["scopes_supported"] = json!(self.scopes_supported);
        }
        if !dpop_algorithms.is_empty() {
            document["dpop_signing_alg_values_supported"] = json!(dpop_algorithms);
        }
        if let Some(name) = &self.resource_name {
            document["resource_name"] = json!(name);
        }
        document
    }

    /// A router serving `document` at [`Self::path`].
    pub(crate) fn router<S>(&self, document: &serde_json::Value) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let body = Bytes::from(document.to_string());
        let serve = move || {
            let body = body.clone();
            async move {
                (
                    [
                        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                        (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL)),
                        // A public document, as Tessera's own discovery: browser-based
                        // clients on any origin may read it.
                        (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
                    ],
                    body,
                )
            }
        };
        Router::new().route(&self.path, get(serve))
    }
}

/// A resource identifier [`ResourceMetadata::new`] cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidResource {
    resource: String,
    reason: &'static str,
}

impl fmt::Display for InvalidResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resource identifier {:?}: {}", self.resource, self.reason)
    }
}

impl std::error::Error for InvalidResource {}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use serde_json::json;
    use tower::ServiceExt as _;

    use super::ResourceMetadata;

    #[test]
    fn the_document_path_inserts_the_well_known_suffix_before_the_resource_path() {
        let metadata = ResourceMetadata::new("https://api.example.com/mcp", &[]).unwrap();
        assert_eq!(metadata.path(), "/.well-known/oauth-protected-resource/mcp");
        assert_eq!(metadata.url(), "https://api.example.com/.well-known/oauth-protected-resource/mcp");
    }

    #[test]
    fn a_resource_without_a_path_has_the_bare_well_known_path() {
        for resource in ["https://api.example.com", "https://api.example.com/"] {
            let metadata = ResourceMetadata::new(resource, &[]).unwrap();
            assert_eq!(metadata.path(), "/.well-known/oauth-protected-resource", "{resource}");
            assert_eq!(metadata.url(), "https://api.example.com/.well-known/oauth-protected-resource");
            assert_eq!(metadata.resource(), resource, "kept as given (RFC 9728 §3.3)");
        }
    }

    #[test]
    fn the_document_url_keeps_a_non_default_port_and_the_whole_path() {
        let metadata = ResourceMetadata::new("http://127.0.0.1:8080/tenants/a/mcp/", &[]).unwrap();
        assert_eq!(
            metadata.url(),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/tenants/a/mcp/"
        );
    }

    #[test]
    fn unusable_resource_identifiers_are_refused() {
        for resource in [
            "api.example.com/mcp",
            "/mcp",
            "ftp://api.example.com/mcp",
            "https://api.example.com/mcp#tools",
            "https://api.example.com/mcp?tenant=a",
            "https://user:pw@api.example.com/mcp",
            "https://api.example.com/:mcp",
            "https://api.example.com/*",
        ] {
            assert!(ResourceMetadata::new(resource, &[]).is_err(), "{resource}");
        }
    }

    #[test]
    fn the_document_names_the_issuer_scopes_and_dpop_algorithms() {
        let metadata = ResourceMetadata::new("https://api.example.com/mcp", &["mcp.tools", "mcp.read"])
            .unwrap()
            .with_resource_name("Example MCP");
        let document = metadata.document("https://id.example.com", &["ES256".to_owned()]);
        assert_eq!(
            document,
            json!({
                "resource": "https://api.example.com/mcp",
                "authorization_servers": ["https://id.example.com"],
                "scopes_supported": ["mcp.tools", "mcp.read"],
                "bearer_methods_supported": ["header"],
                "dpop_signing_alg_values_supported": ["ES256"],
                "resource_name": "Example MCP",
            })
        );
    }

    #[test]
    fn optional_members_are_left_out_when_there_is_nothing_to_say() {
        let metadata = ResourceMetadata::new("https://api.example.com", &[]).unwrap();
        let document = metadata.document("https://id.example.com", &[]);
        assert_eq!(
            document,
            json!({
                "resource": "https://api.example.com",
                "authorization_servers": ["https://id.example.com"],
                "bearer_methods_supported": ["header"],
            })
        );
    }

    #[tokio::test]
    async fn the_router_serves_cacheable_json_at_the_well_known_path_only() {
        let metadata = ResourceMetadata::new("https://api.example.com/mcp", &["mcp.tools"]).unwrap();
        let document = metadata.document("https://id.example.com", &[]);
        let router: axum::Router = metadata.router(&document);
        let get = |path: &str| {
            let request = Request::get(path).body(Body::empty()).unwrap();
            router.clone().oneshot(request)
        };

        let response = get("/.well-known/oauth-protected-resource/mcp").await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "public, max-age=3600");
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap(), document);

        let elsewhere = get("/.well-known/oauth-protected-resource").await.unwrap();
        assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND, "that would be another resource's");
    }
}
