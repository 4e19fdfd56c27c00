// Administration: users (create, disable, enable) and API keys (create, revoke; a new key is shown once).

import { request } from "./api.js";
import { $, announce, confirmAction, formatDateTime, h, hideMessage, setBusy, showError, cell } from "./dom.js";
import { loadModels, resetModels } from "./models.js";
import { roleWords } from "./words.js";

let me = null;

export function initAdmin() {
  $("#user-form").addEventListener("submit", createUser);
  $("#key-form").addEventListener("submit", createKey);
}

export function resetAdmin() {
  me = null;
  $("#user-secret").replaceChildren();
  $("#key-secret").replaceChildren();
  $("#users-table tbody").replaceChildren();
  $("#keys-table tbody").replaceChildren();
  $("#user-form").reset();
  $("#key-form").reset();
  resetModels();
}

export async function loadAdmin(principal) {
  me = principal;
  hideMessage($("#admin-error"));
  await Promise.all([loadUsers(), loadKeys(), loadModels()]);
}

async function loadUsers() {
  try {
    const users = await request("users");
    $("#users-table tbody").replaceChildren(...users.map(userRow));
  } catch (error) {
    showError($("#admin-error"), error, "The users could not be loaded");
  }
}

async function loadKeys() {
  try {
    const keys = await request("keys");
    const body = $("#keys-table tbody");
    body.replaceChildren(...keys.map(keyRow));
    if (!keys.length) body.append(h("tr", { class: "empty" }, h("td", { colspan: "6" }, "No API keys yet.")));
  } catch (error) {
    showError($("#admin-error"), error, "The API keys could not be loaded");
  }
}

function status(active, activeText, inactiveText) {
  return h("span", { class: `tag ${active ? "tag-active" : "tag-inactive"}` }, active ? activeText : inactiveText);
}

function userRow(user) {
  const self = me && me.kind === "user" && me.name === user.username;
  const action = h("button", { type: "button", class: "button small quiet" },
    user.active ? "Disable" : "Enable");
  action.setAttribute("aria-label", `${user.active ? "Disable" : "Enable"} ${user.username}`);
  if (self) {
    action.disabled = true;
    action.title = "You cannot disable your own account";
  }
  action.addEventListener("click", async () => {
    if (user.active) {
      const ok = await confirmAction(`Disable ${user.username}?`,
        "They are signed out at once and cannot sign in until an administrator enables the account again.",
        "Disable user");
      if (!ok) return;
    }
    setBusy(action, true, user.active ? "Disabling…" : "Enabling…");
    try {
      await request(`users/${encodeURIComponent(user.username)}/${user.active ? "disable" : "enable"}`, { method: "POST" });
      announce(`${user.username} ${user.active ? "disabled" : "enabled"}.`);
      await loadUsers();
    } catch (error) {
      setBusy(action, false);
      showError($("#admin-error"), error, `${user.username} could not be ${user.active ? "disabled" : "enabled"}`);
    }
  });
  return h(
    "tr",
    { "data-username": user.username },
    cell("Username", null, h("strong", null, user.username), self ? h("span", { class: "muted" }, " (you)") : null),
    cell("Role", null, roleWords(user.role)),
    cell("Status", null, status(user.active, "Active", "Disabled")),
    cell("Created", null, formatDateTime(user.created_at)),
    cell("Created by", { class: "muted" }, user.created_by),
    h("td", { class: "actions" }, action),
  );
}

function keyRow(key) {
  const action = key.active
    ? h("button", { type: "button", class: "button small quiet", "aria-label": `Revoke key ${key.name}` }, "Revoke")
    : null;
  if (key.active) {
    action.addEventListener("click", async () => {
      const ok = await confirmAction(`Revoke “${key.name}”?`,
        "Anything using this key stops working at once. This cannot be undone; create a new key if needed.",
        "Revoke key");
      if (!ok) return;
      setBusy(action, true, "Revoking…");
      try {
        await request(`keys/${key.id}`, { method: "DELETE" });
        announce(`Key ${key.name} revoked.`);
        const shown = $("#key-secret");
        if (shown.dataset.keyId === key.id) {
          shown.replaceChildren();
          delete shown.dataset.keyId;
        }
        await loadKeys();
      } catch (error) {
        setBusy(action, false);
        showError($("#admin-error"), error, "The key could not be revoked");
      }
    });
  }
  return h(
    "tr",
    { "data-key-id": key.id },
    cell("Name", null, h("strong", null, key.name)),
    cell("Key id", { class: "mono" }, key.id),
    cell("Role", null, roleWords(key.role)),
    cell("Status", null, status(key.active, "Active", "Revoked"),
      key.active ? null : h("span", { class: "muted small-note" }, ` ${formatDateTime(key.revoked_at)}`)),
    cell("Created", null, formatDateTime(key.created_at), h("span", { class: "muted small-note" }, ` by ${key.created_by}`)),
    h("td", { class: "actions" }, action),
  );
}

/** A secret shown once, with a copy button and the warning that it cannot be shown again. */
function secretBox(host, title, what, secret, testid) {
  const field = h("input", { type: "text", class: "secret-value mono", readonly: true, value: secret,
    "aria-label": what, "data-testid": testid, spellcheck: "false" });
  const copied = h("span", { class: "copied", role: "status" });
  const copy = h("button", { type: "button", class: "button secondary small" }, "Copy");
  copy.addEventListener("click", async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(secret);
      copied.textContent = "Copied.";
    } catch {
      copied.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  });
  const dismiss = h("button", { type: "button", class: "button-link" }, "I have saved it — hide");
  dismiss.addEventListener("click", () => host.replaceChildren());
  const heading = h("p", { class: "secret-title" }, title);
  host.replaceChildren(
    h("div", { class: "secret" },
      heading,
      h("p", null, `Copy it now: this is the only time the ${what} is shown. Only a hash is kept.`),
      h("div", { class: "secret-row" }, field, copy),
      copied,
      dismiss),
  );
  field.focus();
  field.select();
}

async function createUser(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  const box = $("#admin-error");
  hideMessage(box);
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/.test(username)) {
    showInvalid(box, form.elements.username, "A username is 1–64 letters, digits or _ . @ - and starts with a letter or digit.");
    return;
  }
  if (password && password.length < 12) {
    showInvalid(box, form.elements.password, "A password needs at least 12 characters (or leave it empty to generate one).");
    return;
  }
  setBusy(button, true, "Creating…");
  try {
    const body = { username, role: form.elements.role.value };
    if (password) body.password = password;
    const created = await request("users", { method: "POST", json: body });
    form.reset();
    announce(`User ${created.user.username} created.`);
    if (created.password) {
      secretBox($("#user-secret"), `User “${created.user.username}” created. Their password:`, "password", created.password,
        "new-password");
    } else {
      $("#user-secret").replaceChildren(h("p", { class: "message success" }, `User “${created.user.username}” created with the password you chose.`));
    }
    await loadUsers();
  } catch (error) {
    showError(box, error, "The user was not created");
  } finally {
    setBusy(button, false);
  }
}

async function createKey(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  const box = $("#admin-error");
  hideMessage(box);
  const name = form.elements.name.value.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9 _.@:-]{0,63}$/.test(name)) {
    showInvalid(box, form.elements.name, "A key name is 1–64 letters, digits, spaces or _ . @ : - and starts with a letter or digit.");
    return;
  }
  setBusy(button, true, "Creating…");
  try {
    const created = await request("keys", { method: "POST", json: { name, role: form.elements.role.value } });
    form.reset();
    announce(`API key ${created.key.name} created.`);
    secretBox($("#key-secret"), `API key “${created.key.name}” created:`, "API key", created.api_key, "new-api-key");
    $("#key-secret").dataset.keyId = created.key.id;
    await loadKeys();
  } catch (error) {
    showError(box, error, "The key was not created");
  } finally {
    setBusy(button, false);
  }
}

function showInvalid(box, input, text) {
  box.replaceChildren(h("div", { class: "message-body" }, h("p", { class: "message-title" }, "Check the form"), h("p", null, text)));
  box.className = "message error";
  box.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.addEventListener("input", () => input.removeAttribute("aria-invalid"), { once: true });
  input.focus();
}
