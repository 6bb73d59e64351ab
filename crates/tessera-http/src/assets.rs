//! Static files the pages load from `/assets/`.

/// `/assets/passkeys.js`: the passkey buttons' script (loaded with the page's CSP nonce;
/// its two POSTs need `connect-src 'self'`). Serve as `text/javascript; charset=utf-8`.
pub(crate) const PASSKEYS_JS: &str = include_str!("../assets/passkeys.js");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passkey_script_handles_the_three_ceremonies_without_eval() {
        for hook in
            ["data-passkey", "data-options-url", "data-finish-url", "data-passkey-error", "csrf_token"]
        {
            assert!(PASSKEYS_JS.contains(hook), "{hook}");
        }
        assert!(!PASSKEYS_JS.contains("eval("));
        assert!(!PASSKEYS_JS.contains("new Function"));
    }
}
