// The page: sign in and out, the views (hash routes), the model line. The credential is held in memory.

import { initAdmin, loadAdmin, resetAdmin } from "./admin.js";
import { initAnalyse, previews, resetAnalyse, setAnalyseContext } from "./analyse.js";
import * as api from "./api.js";
import { initAudit, loadAudit, resetAudit } from "./audit.js";
import { $, $$, announce, focusHeading, h, hideMessage, setBusy, showError, showMessage } from "./dom.js";
import { initHistory, loadHistory, resetHistory } from "./history.js";
import { initJobs, loadJobs, resetJobs } from "./jobs.js";
import { initMonitoring, loadMonitoring } from "./monitoring.js";
import { renderResult, resultSentence } from "./result.js";
import { initSecurity, openSecurity } from "./security.js";
import { roleWords } from "./words.js";

const VIEWS = ["signin", "security", "analyse", "result", "history", "admin", "jobs", "audit", "monitoring", "notfound"];
const NEEDS = {
  analyse: "predict", history: "read_history", result: "read_history", admin: "manage", jobs: "manage", audit: "read_audit",
  monitoring: "read_audit",
};

let me = null; // GET /auth/me: {kind, id, name, role, permissions}
let expiryTimers = [];
let resultView = null;

const can = (permission) => Boolean(me && me.permissions.includes(permission));

function homeView() {
  if (can("predict")) return "analyse";
  if (can("manage")) return "admin";
  if (can("read_history")) return "history";
  if (can("read_audit")) return "audit";
  return "notfound";
}

function showView(name) {
  for (const view of VIEWS) $(`#view-${view}`).hidden = view !== name;
  for (const link of $$("#nav a")) {
    const active = link.dataset.view === name || (name === "result" && link.dataset.view === "history");
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.body.dataset.view = name;
}

function titleOf(name) {
  const heading = $(`#view-${name} h1`);
  return heading ? heading.textContent : "";
}

async function route() {
  if (!me) {
    showView("signin");
    document.title = "Sign in · CXR Pneumonia Detector";
    return;
  }
  const [name, id] = (window.location.hash.replace(/^#\/?/, "") || homeView()).split("/");
  const view = VIEWS.includes(name) && name !== "signin" ? name : "notfound";
  if (view === "notfound" || (NEEDS[view] && !can(NEEDS[view]))) {
    $("#notfound-text").textContent = view === "notfound"
      ? "This page does not exist. Use the menu above."
      : `Your role (${roleWords(me.role)}) does not give access to this page.`;
    showView("notfound");
    document.title = "Not available · CXR Pneumonia Detector";
    return "notfound";
  }
  showView(view);
  document.title = `${view === "result" ? "Result" : titleOf(view)} · CXR Pneumonia Detector`;
  if (view === "history") await loadHistory();
  else if (view === "admin") await loadAdmin(me);
  else if (view === "jobs") await loadJobs();
  else if (view === "audit") await loadAudit();
  else if (view === "monitoring") await loadMonitoring();
  else if (view === "result") await openResult(id);
  return view;
}

async function openResult(id) {
  const host = $("#result-host");
  if (resultView) resultView.dispose();
  resultView = null;
  host.replaceChildren(h("p", { class: "loading" }, "Loading the result…"));
  if (!/^[0-9a-f]{32}$/.test(id || "")) {
    host.replaceChildren(h("div", { class: "message error", role: "alert" }, "This link does not name a result."));
    return;
  }
  try {
    const prediction = await api.request(`predictions/${id}`);
    resultView = renderResult(host, prediction, {
      preview: previews.get(id),
      canReview: can("review"),
      heading: "h2",
    });
    resultView.reveal();
    announce(resultSentence(prediction));
  } catch (error) {
    const box = h("div", { class: "message error", role: "alert" });
    host.replaceChildren(box);
    showError(box, error, "The result could not be opened");
  }
}

async function signedIn() {
  me = await api.request("auth/me");
  $("#account-name").textContent = me.name;
  $("#account-role").textContent = roleWords(me.role);
  $("#account").hidden = false;
  $("#open-password").hidden = me.kind !== "user";
  $("#open-mfa").hidden = me.kind !== "user" || (await api.request("auth/mfa")).enrolled;
  for (const item of $$("#nav li")) item.hidden = !can(item.dataset.perm);
  $("#nav").hidden = false;
  setAnalyseContext({ canReview: can("review") });
  loadModel();
  announce(`Signed in as ${me.name}, ${roleWords(me.role)}.`);
  if (!window.location.hash || window.location.hash === "#/") {
    history.replaceState(null, "", `#/${homeView()}`); // no hashchange: route() below does the work once
  }
  await route();
  const heading = $(`#view-${document.body.dataset.view} h1`);
  if (heading && document.body.dataset.view !== "result") focusHeading(heading);
}

/** A shared ward PC must not stay signed in: warn two minutes before the token ends, then sign out. */
function watchExpiry(seconds) {
  for (const timer of expiryTimers) clearTimeout(timer);
  expiryTimers = [];
  if (!Number.isFinite(seconds) || seconds <= 0) return;
  if (seconds > 180) {
    expiryTimers.push(setTimeout(() => flash("Your session ends in 2 minutes. Finish what you are doing, then sign in again.", 120, "warning"),
      (seconds - 120) * 1000));
  }
  expiryTimers.push(setTimeout(() => {
    if (me) signOut("Your session has ended after its time limit. Please sign in again.");
  }, seconds * 1000));
}

function signOut(message) {
  api.revokeSession();
  for (const timer of expiryTimers) clearTimeout(timer);
  expiryTimers = [];
  $("#flash").hidden = true;
  api.clearCredential();
  me = null;
  if (resultView) resultView.dispose();
  resultView = null;
  resetAnalyse();
  resetHistory();
  resetAdmin();
  resetJobs();
  resetAudit();
  $("#result-host").replaceChildren();
  $("#account").hidden = true;
  $("#nav").hidden = true;
  $("#signin-otp-field").hidden = true;
  loadHealth();
  $("#model-card").hidden = true;
  $("#signin-form").reset();
  $("#apikey-form").reset();
  const box = $("#signin-message");
  if (message) showMessage(box, message, "info");
  else hideMessage(box);
  history.replaceState(null, "", window.location.pathname + window.location.search);
  showView("signin");
  document.title = "Sign in · CXR Pneumonia Detector";
  focusHeading($("#signin-title"));
  announce(message || "Signed out.");
}

async function loadModel() {
  try {
    const model = await api.request("models/current");
    $("#model-line").replaceChildren(
      "Model: ",
      h("strong", null, `${model.name} ${model.version}`),
      h("span", { class: "muted" }, ` · ${model.backbone} · sha256 ${model.sha256.slice(0, 12)}…`),
    );
    if (model.card) {
      $("#model-card-text").textContent = model.card;
      $("#model-card").hidden = false;
    }
    if (model.disclaimer) $("#disclaimer-text").textContent = model.disclaimer.replace(/^Decision support only, not a diagnosis:\s*/i, "").replace(/^./, (c) => c.toUpperCase());
    $("#service-banner").hidden = true;
  } catch (error) {
    if (error.status === 503) {
      const banner = $("#service-banner");
      banner.textContent = "No model is being served right now: images cannot be analysed. The history and audit trail still work.";
      banner.hidden = false;
      $("#model-line").textContent = "Model: none loaded";
    }
  }
}

/** Before sign-in: is the service ready, and which model does it serve? (GET /health/ready is public.) */
async function loadHealth() {
  const line = $("#model-line");
  try {
    const response = await fetch(api.url("health/ready"), { headers: { Accept: "application/json" }, credentials: "omit" });
    const body = await response.json();
    if (me) return; // signed in meanwhile: loadModel() owns the line
    if (body.status === "ready") {
      line.textContent = `Model: ${body.model.detail}`;
    } else {
      line.textContent = "Model: none ready";
      const banner = $("#service-banner");
      banner.textContent = `The service is not ready: ${!body.model.ok ? body.model.detail : body.database.detail}. Images cannot be analysed until an administrator fixes this.`;
      banner.hidden = false;
    }
  } catch {
    if (!me) line.textContent = "Model: the service cannot be reached";
  }
}

function initSignIn() {
  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const box = $("#signin-message");
    const username = form.elements.username.value.trim();
    const password = form.elements.password.value;
    if (!username || !password) {
      showMessage(box, "Enter your username and password.", "error");
      (username ? form.elements.password : form.elements.username).focus();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    setBusy(button, true, "Signing in…");
    try {
      await signInWith(username, password, form.elements.otp.value.trim());
    } catch (error) {
      api.clearCredential();
      me = null;
      if (error.code === "mfa_required" || error.code === "mfa_invalid") {
        $("#signin-otp-field").hidden = false;
        showMessage(box, error.code === "mfa_required"
          ? "Enter the code from your authenticator app (or a recovery code)."
          : "That code is wrong or was already used. Enter the code the app shows now.", "error");
        form.elements.otp.value = "";
        form.elements.otp.focus();
      } else {
        if (error.status === 401) {
          showMessage(box, "Wrong username or password, or the account is disabled.", "error");
        } else {
          showError(box, error, "Sign-in failed");
        }
        form.elements.password.value = "";
        form.elements.password.focus();
      }
    } finally {
      setBusy(button, false);
    }
  });

  $("#open-mfa").addEventListener("click", () => {
    showView("security");
    openSecurity(null, null, () => route());
  });

  $("#apikey-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const box = $("#signin-message");
    const key = form.elements.apikey.value.trim();
    if (!/^cxr_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/.test(key)) {
      showMessage(box, "This does not look like an API key: a key starts with cxr_ followed by its id and secret.", "error");
      form.elements.apikey.focus();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    setBusy(button, true, "Checking…");
    api.setApiKey(key);
    try {
      form.reset();
      hideMessage(box);
      await signedIn();
    } catch (error) {
      api.clearCredential();
      me = null;
      if (error.status === 401) showMessage(box, "This API key is not valid or has been revoked.", "error");
      else showError(box, error, "Sign-in failed");
      form.elements.apikey.focus();
    } finally {
      setBusy(button, false);
    }
  });

  $("#sign-out").addEventListener("click", () => signOut());
}

/** A short confirmation under the notice bar, announced, that goes away by itself. */
function flash(text, seconds = 8, kind = "success") {
  const banner = $("#flash");
  banner.textContent = text;
  banner.className = `banner ${kind}`;
  banner.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => {
    banner.hidden = true;
  }, seconds * 1000);
}

/** Sign in; a token restricted to replacing a one-time password or enrolling a second factor opens
 * that step first, and the sign-in starts again once it is done. */
function clearSignInForm() {
  $("#signin-form").reset();
  $("#signin-otp-field").hidden = true;
  hideMessage($("#signin-message"));
}

async function signInWith(username, password, otp) {
  const fields = otp ? { username, password, otp } : { username, password };
  const token = await api.request("auth/token", { method: "POST", form: fields });
  api.setToken(token.access_token, token.refresh_token);
  // Cleared as soon as the password is accepted, not after the views have loaded: a sign-out while they
  // load must not have what is typed into the form next wiped by this sign-in's late reset.
  clearSignInForm();
  if (!token.restriction) {
    watchExpiry(Number(token.expires_in));
    await signedIn();
    return;
  }
  $("#account-name").textContent = username;
  $("#account-role").textContent = "";
  $("#account").hidden = false;
  showView("security");
  document.title = "Sign-in security · CXR Pneumonia Detector";
  openSecurity(token.restriction, { username, password }, async (next, again) => {
    api.clearCredential();
    if (again && again.password) {
      try {
        await signInWith(again.username, again.password, "");
        return;
      } catch (error) {
        if (error.code !== "mfa_required") throw error;
      }
    }
    signOut("Two-step sign-in is on. Sign in with your password and a code from your authenticator app.");
    $("#signin-form").elements.username.value = again ? again.username : username;
    $("#signin-otp-field").hidden = false;
    $("#signin-form").elements.password.focus();
  });
}

function initPasswordDialog() {
  const dialog = $("#password-dialog");
  const form = $("#password-form");
  const box = $("#password-message");
  $("#open-password").addEventListener("click", () => {
    form.reset();
    hideMessage(box);
    dialog.showModal();
  });
  $("#password-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const current = $("#pw-current").value;
    const next = $("#pw-new").value;
    if (next.length < 12) {
      showMessage(box, "The new password needs at least 12 characters.", "error");
      $("#pw-new").focus();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    setBusy(button, true, "Changing…");
    try {
      await api.request("auth/password", { method: "POST", json: { current_password: current, new_password: next } });
      dialog.close();
      flash("Your password was changed.");
    } catch (error) {
      showError(box, error, "The password was not changed");
    } finally {
      setBusy(button, false);
    }
  });
}

function init() {
  initSignIn();
  initSecurity();
  initPasswordDialog();
  initAnalyse();
  initHistory();
  initAdmin();
  initJobs();
  initAudit();
  initMonitoring();
  api.onUnauthorized(() => {
    // Only an open session can end; a refused sign-in says so itself.
    if (me) signOut("Your session has ended (it expired, or the account or key was disabled). Please sign in again.");
  });
  // After moving to another view, focus its heading, so keyboard and screen-reader users start there.
  window.addEventListener("hashchange", async () => {
    const view = await route();
    if (view && view !== "result") focusHeading($(`#view-${view} h1`));
  });
  // Nothing survives a reload: the credential is in memory only.
  showView("signin");
  loadHealth();
}

init();
