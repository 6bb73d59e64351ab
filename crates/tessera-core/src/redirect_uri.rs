//! Redirect URI matching: exact string comparison (OAuth 2.1 §2.3.1), except that for
//! public native clients a loopback `http` URI matches on any port (RFC 8252 §7.3,
//! RFC 9700 §4.1.3).

use url::Url;

/// Whether `requested` may be used for a client that registered `registered`; the port
/// of a loopback URI may differ only when `any_loopback_port` (public native clients).
#[must_use]
pub fn matches(registered: &str, requested: &str, any_loopback_port: bool) -> bool {
    if registered == requested {
        return true;
    }
    if !any_loopback_port {
        // RFC 9700 §4.1.3, OAuth 2.1 §8.4.2: everyone else gets exact string matching.
        return false;
    }
    let (Ok(registered), Ok(requested)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    // RFC 8252 §7.3: native apps listen on an ephemeral port of the loopback address,
    // so only the port may differ. `localhost` too, as the configuration contract says
    // (§8.3 prefers the literal IPs), but never one host for another.
    let loopback = |url: &Url| {
        url.scheme() == "http" && matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
    };
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
pub fn find<'a>(registered: &'a [String], requested: &str, any_loopback_port: bool) -> Option<&'a str> {
    registered.iter().map(String::as_str).find(|uri| matches(uri, requested, any_loopback_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_strings_match() {
        let registered = "https://app.example/cb";
        assert!(matches(registered, "https://app.example/cb", true));
        for other in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://APP.example/cb",
            "https://app.example:443/cb",
        ] {
            assert!(!matches(registered, other, true), "{other}");
        }
    }

    #[test]
    fn loopback_redirects_of_public_clients_match_on_any_port() {
        assert!(matches("http://127.0.0.1/callback", "http://127.0.0.1:51004/callback", true));
        assert!(matches("http://[::1]/callback", "http://[::1]:6000/callback", true));
        assert!(matches("http://localhost/callback", "http://localhost:51004/callback", true));
        assert!(!matches("http://127.0.0.1/callback", "http://127.0.0.1:51004/other", true));
        assert!(!matches("http://localhost/callback", "http://127.0.0.1:51004/callback", true));
        assert!(!matches("http://127.0.0.1/callback", "https://127.0.0.1:51004/callback", true));
        assert!(!matches("http://127.0.0.1/callback", "http://127.0.0.2:51004/callback", true));
    }

    #[test]
    fn loopback_redirects_of_confidential_clients_match_exactly() {
        assert!(matches("http://127.0.0.1/callback", "http://127.0.0.1/callback", false));
        assert!(!matches("http://127.0.0.1/callback", "http://127.0.0.1:51004/callback", false));
        assert!(!matches("http://localhost:8080/cb", "http://localhost:8081/cb", false));
    }
}
