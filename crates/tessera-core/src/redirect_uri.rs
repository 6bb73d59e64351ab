//! Redirect URI matching: exact string comparison (OAuth 2.1 §2.3.1), except that a
//! loopback `http` URI matches on any port (RFC 8252 §7.3).

use url::Url;

/// Whether `requested` may be used for a client that registered `registered`.
#[must_use]
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(registered), Ok(requested)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    // RFC 8252 §7.3: native apps listen on an ephemeral port of the loopback address,
    // so only the port may differ, and only for the literal IP loopbacks (§8.3).
    let loopback =
        |url: &Url| url.scheme() == "http" && matches!(url.host_str(), Some("127.0.0.1" | "[::1]"));
    loopback(&registered)
        && loopback(&requested)
        && registered.host_str() == requested.host_str()
        && registered.path() == requested.path()
        && registered.query() == requested.query()
        && registered.fragment().is_none()
        && requested.fragment().is_none()
        && registered.username() == requested.username()
        && registered.password().is_none()
        && requested.password().is_none()
}

/// The registered URI that `requested` matches, if any.
#[must_use]
pub fn find<'a>(registered: &'a [String], requested: &str) -> Option<&'a str> {
    registered.iter().map(String::as_str).find(|uri| matches(uri, requested))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_strings_match() {
        let registered = "https://app.example/cb";
        assert!(matches(registered, "https://app.example/cb"));
        for other in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://APP.example/cb",
            "https://app.example:443/cb",
        ] {
            assert!(!matches(registered, other), "{other}");
        }
    }

    #[test]
    fn loopback_redirects_match_on_any_port() {
        assert!(matches("http://127.0.0.1/callback", "http://127.0.0.1:51004/callback"));
        assert!(matches("http://[::1]/callback", "http://[::1]:6000/callback"));
        assert!(!matches("http://127.0.0.1/callback", "http://127.0.0.1:51004/other"));
        assert!(!matches("http://localhost/callback", "http://localhost:51004/callback"));
        assert!(!matches("http://127.0.0.1/callback", "https://127.0.0.1:51004/callback"));
        assert!(!matches("http://127.0.0.1/callback", "http://127.0.0.2:51004/callback"));
    }
}
