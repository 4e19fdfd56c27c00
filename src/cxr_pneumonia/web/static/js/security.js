// Sign-in security: replace the one-time first password, set up TOTP (QR code drawn by the server),
// show the recovery codes once. A restricted token (the API's "restriction") allows only this view.

import * as api from "./api.js";
import { $, focusHeading, h, hideMessage, setBusy, showError, showMessage } from "./dom.js";

let login = null; // {username, password} while a restricted sign-in is being completed
let finished = null; // called with the next step: "signin" (sign in again) or "done"

/** Open the view for a restricted token ("password_change" | "mfa_enrolment") or for a voluntary set-up. */
export function openSecurity(restriction, credentials, onFinished) {
  login = credentials || null;
  finished = onFinished;
  hideMessage($("#security-message"));
  $("#first-password-form").hidden = restriction !== "password_change";
  $("#mfa-setup").hidden = restriction === "password_change";
  $("#mfa-enrol").hidden = true;
  $("#mfa-recovery").hidden = true;
  $("#mfa-why").textContent = restriction === "mfa_enrolment"
    ? "Your role requires two-step sign-in: a code from an app on your phone as well as your password."
    : "Signing in will ask for a code from an app on your phone as well as your password.";
  focusHeading($("#security-title"));
  if (restriction === "password_change") $("#first-password-new").focus();
  else startEnrolment();
}

async function startEnrolment() {
  try {
    const started = await api.request("auth/mfa/totp", { method: "POST" });
    $("#mfa-qr").src = started.qr_svg;
    $("#mfa-secret").textContent = started.secret;
    $("#mfa-enrol").hidden = false;
    $("#mfa-code").focus();
  } catch (error) {
    showError($("#security-message"), error, "Two-step sign-in cannot be set up");
  }
}

async function setFirstPassword(event) {
  event.preventDefault();
  const form = event.currentTarget; // gone from the event once it has been dispatched
  const box = $("#security-message");
  const next = $("#first-password-new").value;
  if (next.length < 12) {
    showMessage(box, "The new password needs at least 12 characters.", "error");
    $("#first-password-new").focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  setBusy(button, true, "Saving…");
  try {
    await api.request("auth/password", { method: "POST", json: { current_password: login.password, new_password: next } });
    form.reset();
    finished("signin", { username: login.username, password: next });
  } catch (error) {
    showError(box, error, "The password was not changed");
  } finally {
    setBusy(button, false);
  }
}

async function confirmCode(event) {
  event.preventDefault();
  const box = $("#security-message");
  const code = $("#mfa-code").value.trim();
  const button = event.currentTarget.querySelector("button[type=submit]");
  setBusy(button, true, "Checking…");
  try {
    const confirmed = await api.request("auth/mfa/totp/confirm", { method: "POST", json: { code } });
    hideMessage(box);
    $("#mfa-enrol").hidden = true;
    $("#mfa-recovery-codes").replaceChildren(...confirmed.recovery_codes.map((c) => h("li", null, c)));
    $("#mfa-recovery").hidden = false;
    $("#mfa-done").focus();
  } catch (error) {
    if (error.code === "mfa_invalid") showMessage(box, "That code is wrong or was already used. Enter the code the app shows now.", "error");
    else showError(box, error, "The code was not accepted");
    $("#mfa-code").select();
  } finally {
    setBusy(button, false);
  }
}

export function initSecurity() {
  $("#first-password-form").addEventListener("submit", setFirstPassword);
  $("#mfa-confirm-form").addEventListener("submit", confirmCode);
  $("#mfa-done").addEventListener("click", () => {
    $("#mfa-confirm-form").reset();
    // A restricted sign-in must start again, now with a code; a voluntary set-up just goes back.
    finished(login ? "signin" : "done", login ? { username: login.username } : null);
    login = null;
  });
}
