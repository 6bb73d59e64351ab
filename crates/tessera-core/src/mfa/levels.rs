//! The levels a sign-in reaches: `amr` values (RFC 8176) and the `acr` they earn.
//! Pure rules, below everything that signs users in or mints ID tokens.

/// RFC 8176 §2 method values.
pub mod amr {
    /// Password.
    pub const PASSWORD: &str = "pwd";
    /// One-time password (an authenticator app's code, or a recovery code).
    pub const ONE_TIME_PASSWORD: &str = "otp";
    /// Proof of possession of a hardware-secured key.
    pub const HARDWARE_KEY: &str = "hwk";
    /// Proof of possession of a software-secured key (a synced passkey).
    pub const SOFTWARE_KEY: &str = "swk";
    /// User presence test.
    pub const USER_PRESENCE: &str = "user";
    /// Multiple-factor authentication.
    pub const MULTIPLE_FACTORS: &str = "mfa";
}

/// Authentication levels, weakest first: the `acr` values of OpenID's EAP ACR values
/// this server reaches. A stronger level satisfies a request for a weaker one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A password (or any one factor).
    Password,
    /// Any two factors.
    MultiFactor,
    /// Phishing-resistant: a passkey.
    PhishingResistant,
}

/// Discovery's `acr_values_supported`.
pub const ACR_VALUES_SUPPORTED: [&str; 3] = ["pwd", "mfa", "phr"];

impl Level {
    /// The `acr` value.
    #[must_use]
    pub fn acr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::MultiFactor => "mfa",
            Self::PhishingResistant => "phr",
        }
    }

    /// The level an `acr` value names; `None` for values this server does not reach.
    #[must_use]
    pub fn from_acr(value: &str) -> Option<Self> {
        match value {
            "pwd" => Some(Self::Password),
            "mfa" => Some(Self::MultiFactor),
            "phr" => Some(Self::PhishingResistant),
            _ => None,
        }
    }

    /// The level a sign-in with these methods reached.
    #[must_use]
    pub fn of(methods: &[String]) -> Self {
        let has = |method: &str| methods.iter().any(|m| m == method);
        if has(amr::HARDWARE_KEY) || has(amr::SOFTWARE_KEY) {
            Self::PhishingResistant
        } else if has(amr::MULTIPLE_FACTORS) {
            Self::MultiFactor
        } else {
            Self::Password
        }
    }
}

/// The `acr` to put in an ID token for a sign-in with `methods`: the first requested
/// value it satisfies (OpenID Connect Core §3.1.2.1: the client listed them in order of
/// preference), else the strongest level it reached.
#[must_use]
pub fn acr_for(methods: &[String], requested: &[String]) -> String {
    let reached = Level::of(methods);
    requested
        .iter()
        .find(|value| Level::from_acr(value).is_some_and(|level| reached >= level))
        .cloned()
        .unwrap_or_else(|| reached.acr().to_owned())
}

/// `methods` with `added` joined in, and `mfa` once two kinds of factor were used
/// (RFC 8176 §2), or when `added` says so itself (a recovery code).
#[must_use]
pub fn combine(methods: &[String], added: &[&str]) -> Vec<String> {
    let mut combined: Vec<String> = methods.iter().filter(|m| *m != amr::MULTIPLE_FACTORS).cloned().collect();
    let stated = added.contains(&amr::MULTIPLE_FACTORS);
    for method in added.iter().filter(|m| **m != amr::MULTIPLE_FACTORS) {
        if !combined.iter().any(|m| m == method) {
            combined.push((*method).to_owned());
        }
    }
    let knowledge = combined.iter().any(|m| m == amr::PASSWORD);
    let possession = combined
        .iter()
        .any(|m| [amr::ONE_TIME_PASSWORD, amr::HARDWARE_KEY, amr::SOFTWARE_KEY].contains(&m.as_str()));
    // A passkey that verified the user (PIN or biometric) is two factors by itself.
    let verified_key = possession
        && combined.iter().any(|m| m == amr::USER_PRESENCE)
        && !knowledge
        && combined.iter().any(|m| m == amr::HARDWARE_KEY || m == amr::SOFTWARE_KEY);
    if (knowledge && possession) || verified_key || stated {
        combined.push(amr::MULTIPLE_FACTORS.to_owned());
    }
    combined
}
