// Passkey buttons (WebAuthn Level 2) for Tessera's pages. No dependencies, no inline code:
// served from /assets/passkeys.js and loaded as <script src=... nonce=...>.
//
// A button <button type="button" data-passkey="register|sign-in|second-factor"
// data-options-url="..." data-finish-url="..."> inside a form holding the hidden input
// `csrf_token` (and, for registration, an optional input `name`: the passkey's name):
//   1. POSTs csrf_token (form-encoded) to data-options-url, which answers
//      {"ceremony": "...", "options": <webauthn-rs options: {"publicKey": {...}}>};
//   2. runs navigator.credentials.create (register) or .get (the others);
//   3. POSTs csrf_token, ceremony, response (the credential as JSON, base64url fields as
//      webauthn-rs reads them) and name (form-encoded) to data-finish-url, which answers
//      {"redirect": "..."}; the page goes there.
// A failure is shown in the form's [data-passkey-error] element (else the page's).
// The page's Content-Security-Policy must allow `connect-src 'self'` for the two POSTs.
(function () {
  "use strict";

  function toBase64Url(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 1) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64Url(text) {
    const base64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function withBinaryIds(descriptors) {
    return (descriptors || []).map(function (descriptor) {
      return Object.assign({}, descriptor, { id: fromBase64Url(descriptor.id) });
    });
  }

  // webauthn-rs options (base64url strings) -> the dictionaries the browser takes (ArrayBuffers).
  function creationOptions(options) {
    const publicKey = Object.assign({}, options.publicKey);
    publicKey.challenge = fromBase64Url(publicKey.challenge);
    publicKey.user = Object.assign({}, publicKey.user, { id: fromBase64Url(publicKey.user.id) });
    if (publicKey.excludeCredentials) {
      publicKey.excludeCredentials = withBinaryIds(publicKey.excludeCredentials);
    }
    return { publicKey: publicKey };
  }

  function requestOptions(options) {
    const publicKey = Object.assign({}, options.publicKey);
    publicKey.challenge = fromBase64Url(publicKey.challenge);
    if (publicKey.allowCredentials) {
      publicKey.allowCredentials = withBinaryIds(publicKey.allowCredentials);
    }
    return { publicKey: publicKey };
  }

  // The browser's credential -> webauthn-rs's RegisterPublicKeyCredential / PublicKeyCredential.
  function credentialJson(credential) {
    const response = credential.response;
    const json = {
      id: credential.id,
      rawId: toBase64Url(credential.rawId),
      type: credential.type,
      response: { clientDataJSON: toBase64Url(response.clientDataJSON) },
      extensions: {},
    };
    if (response.attestationObject) {
      json.response.attestationObject = toBase64Url(response.attestationObject);
    } else {
      json.response.authenticatorData = toBase64Url(response.authenticatorData);
      json.response.signature = toBase64Url(response.signature);
      json.response.userHandle = response.userHandle ? toBase64Url(response.userHandle) : null;
    }
    return json;
  }

  async function postForm(url, fields) {
    const reply = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      body: new URLSearchParams(fields),
    });
    let body = null;
    try {
      body = await reply.json();
    } catch (_) {
      body = null;
    }
    if (!reply.ok || body === null) {
      const reason = body && (body.error_description || body.error || body.message);
      throw new Error(reason || "the server refused the request (" + reply.status + ")");
    }
    return body;
  }

  function fieldValue(form, name) {
    const field = form && form.querySelector('[name="' + name + '"]');
    return field ? field.value : "";
  }

  function errorElement(button) {
    const form = button.closest("form");
    return (form && form.querySelector("[data-passkey-error]")) || document.querySelector("[data-passkey-error]");
  }

  function showError(button, message) {
    const element = errorElement(button);
    if (element) {
      element.textContent = message;
      element.hidden = false;
    }
  }

  function describe(error) {
    if (error && error.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This device already holds a passkey for your account.";
    }
    return "Passkey failed: " + ((error && error.message) || error);
  }

  async function run(button) {
    const kind = button.getAttribute("data-passkey");
    const form = button.closest("form");
    const csrf = fieldValue(form, "csrf_token");
    const started = await postForm(button.getAttribute("data-options-url"), { csrf_token: csrf });
    let credential;
    if (kind === "register") {
      credential = await navigator.credentials.create(creationOptions(started.options));
    } else {
      credential = await navigator.credentials.get(requestOptions(started.options));
    }
    if (!credential) {
      throw new Error("no passkey was chosen");
    }
    const fields = {
      csrf_token: csrf,
      ceremony: started.ceremony || kind,
      response: JSON.stringify(credentialJson(credential)),
    };
    const name = kind === "register" ? fieldValue(form, "name") : "";
    if (name) {
      fields.name = name;
    }
    const finished = await postForm(button.getAttribute("data-finish-url"), fields);
    if (typeof finished.redirect !== "string") {
      throw new Error("the server gave no next page");
    }
    window.location.assign(finished.redirect);
  }

  document.addEventListener("click", function (event) {
    const button = event.target instanceof Element ? event.target.closest("[data-passkey]") : null;
    if (!button) {
      return;
    }
    event.preventDefault();
    if (!window.PublicKeyCredential || !navigator.credentials) {
      showError(button, "This browser does not support passkeys.");
      return;
    }
    const element = errorElement(button);
    if (element) {
      element.textContent = "";
    }
    button.disabled = true;
    run(button)
      .catch(function (error) {
        showError(button, describe(error));
      })
      .finally(function () {
        button.disabled = false;
      });
  });
})();
