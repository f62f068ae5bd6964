// The server-management page of the Switchyard registrar.
//
// It talks only to the public API (/api/servers...), the same calls the "How to call the
// API" panel shows, so what works here works from a CMS or a shell. Promises it keeps:
//   - every failed call is shown, next to the field it concerns when the error names one,
//     and an error stays on screen until the person closes it or the same form succeeds;
//   - the token, when the registrar asks for one (a 401), lives in sessionStorage only:
//     it is gone when the tab is closed and never shown again after it is entered;
//   - text from the API is put on the page as text (textContent), never as HTML;
//   - no write drops or changes a target the person did not touch: a whole-set write
//     (editing a server with several targets, the blue/green switch) sends the set as
//     the registrar holds it just before, and a write that leaves no active target is
//     sent only after the person confirms it.
"use strict";

(function () {
  const TOKEN_KEY = "switchyard.registrar.token";
  const FIELDS = ["host", "ipAddress", "serviceName", "healthPath"];

  const $ = (id) => document.getElementById(id);

  const state = {
    servers: [],       // as the last GET /api/servers returned them, sorted by host
    revision: null,    // the registrar's revision, from a list or a write
    tokenNeeded: null, // null: not known yet; true: a 401 was seen; false: the API answered without a token
    editing: null,     // the host being edited, or null when the form adds a server
    editTargets: 0,    // how many targets the edited server had when the edit began
    pendingDelete: null,
    open: new Set(),   // hosts whose targets panel is open
    panelError: new Map(), // host -> the last failed target write's message, until one succeeds
  };

  // ---- token (sessionStorage only) ----

  // memoryToken keeps the token for this page view when sessionStorage is blocked.
  let memoryToken = "";

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }
  function setToken(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage blocked: the token then lives until the page reloads */ }
    memoryToken = value;
  }
  const currentToken = () => token() || memoryToken;

  // ---- the API ----

  // call sends one request and always resolves to {status, result}: result is the API's
  // "result" object, or one made up here that says what went wrong (network error, an
  // answer that is not the API's JSON), so callers handle a single shape.
  async function call(method, path, body) {
    const headers = { "Accept": "application/json" };
    const sentToken = currentToken();
    if (sentToken) headers["Authorization"] = "Bearer " + sentToken;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(path, {
        method, headers, cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      return { status: 0, result: { success: false,
        error: "Could not reach the registrar (" + e.message + "). Check that it is running, then try again." } };
    }
    let result = null;
    try {
      const doc = await res.json();
      if (doc && typeof doc.result === "object" && doc.result !== null) result = doc.result;
    } catch (e) { /* not JSON: handled below */ }
    if (res.status === 401) {
      state.tokenNeeded = true;
      const why = sentToken
        ? "The registrar rejected the token (401). Enter the right token under \u201cAPI token\u201d."
        : "The registrar needs a token (401). Enter it under \u201cAPI token\u201d.";
      if (sentToken) setToken("");
      showTokenPanel(true);
      return { status: 401, result: { success: false, error: why, unauthorized: true } };
    }
    if (!result) {
      result = { success: false,
        error: "The registrar answered HTTP " + res.status + " without the API's JSON body." };
    } else if (!res.ok && result.success !== false) {
      result = Object.assign({}, result, { success: false });
    }
    if (!result.success && !result.error) result.error = "The registrar answered HTTP " + res.status + ".";
    if (result.success && !sentToken && state.tokenNeeded === null) state.tokenNeeded = false;
    if (typeof result.revision === "number") state.revision = result.revision;
    return { status: res.status, result };
  }

  const serverPath = (host) => "/api/servers/" + encodeURIComponent(host);

  // fieldOf says which form field an API error concerns: the "field" key when the
  // registrar sends one, else a field name at the start of the message
  // ("ipAddress: '999.1.1.1' is not ..."), else the one field the message names.
  // healthCheck.path is the health check path field.
  function fieldOf(result) {
    if (FIELDS.includes(result.field)) return result.field;
    const msg = String(result.error || "");
    if (/^healthCheck\.path\b/.test(msg)) return "healthPath";
    const start = /^\W?(host|ipAddress|serviceName)\b/.exec(msg);
    if (start) return start[1];
    const named = FIELDS.filter((f) => new RegExp("\\b" + f + "\\b").test(msg));
    return named.length === 1 ? named[0] : null;
  }

  // ---- messages ----

  // say adds a message to the messages area. Errors stay until closed; a success
  // replaces only the previous success, so it never pushes an error out of sight.
  function say(kind, text) {
    const box = $("messages");
    if (kind === "ok") box.querySelectorAll(".msg.ok").forEach((n) => n.remove());
    const msg = document.createElement("div");
    msg.className = "msg " + kind;
    msg.setAttribute("role", kind === "error" ? "alert" : "status");
    const p = document.createElement("p");
    p.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.textContent = "\u00d7";
    close.setAttribute("aria-label", "Close message");
    close.addEventListener("click", () => msg.remove());
    msg.append(p, close);
    box.prepend(msg);
  }

  // ---- token panel ----

  function showTokenPanel(focus) {
    $("token-panel").hidden = false;
    renderFacts();
    if (focus) $("token-input").focus();
  }

  $("token-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = $("token-input").value.trim();
    const err = $("token-error");
    if (!value) {
      err.textContent = "Enter the token the registrar was started with (-token or REGISTRAR_TOKEN).";
      err.hidden = false;
      return;
    }
    err.hidden = true;
    setToken(value);
    $("token-input").value = "";
    const ok = await loadServers();
    if (ok) {
      say("ok", "Token accepted for this browser session. Writes will send it.");
      loadProxies();
    } else if (!currentToken()) {
      err.textContent = "The registrar rejected this token (401). Check it and try again.";
      err.hidden = false;
      $("token-input").focus();
    }
  });

  $("token-forget").addEventListener("click", () => {
    setToken("");
    renderFacts();
    say("ok", "Token forgotten. The page will ask again when the registrar needs it.");
  });

  // ---- list ----

  // loadServers fetches the list and redraws it. body[data-list] says how the last
  // load ended ("loaded" or "failed"), for scripts and tests that wait on the page.
  async function loadServers() {
    const listErr = $("list-error");
    const { result } = await call("GET", "/api/servers");
    if (!result.success) {
      listErr.textContent = "Could not load the servers: " + result.error;
      listErr.hidden = false;
      renderFacts();
      document.body.dataset.list = "failed";
      return false;
    }
    listErr.hidden = true;
    state.servers = (Array.isArray(result.servers) ? result.servers : [])
      .slice().sort((a, b) => String(a.host).localeCompare(String(b.host)));
    renderList();
    renderFacts();
    checkExisting();
    document.body.dataset.list = "loaded";
    return true;
  }

  function matches(server, needle) {
    if (!needle) return true;
    return [server.host, server.ipAddress, server.serviceName, ...targetsOf(server).map((t) => t.address)]
      .some((v) => String(v || "").toLowerCase().includes(needle));
  }

  function cell(row, label, content) {
    const td = document.createElement("td");
    td.dataset.label = label;
    if (content instanceof Node) td.append(content); else td.textContent = content;
    row.append(td);
    return td;
  }

  function renderList() {
    const body = document.querySelector("#servers tbody");
    const needle = $("filter").value.trim().toLowerCase();
    const shown = state.servers.filter((s) => matches(s, needle));
    const kept = keepInputs(body);
    body.replaceChildren();
    for (const s of shown) {
      const tr = document.createElement("tr");
      tr.dataset.host = s.host;
      const name = cell(tr, "Name", s.host);
      name.className = "name";
      cell(tr, "Address", addressOf(s));
      cell(tr, "Service", s.serviceName || "");
      cell(tr, "Last change", timeOf(s.updatedAt));
      const actions = document.createElement("div");
      actions.className = "row-actions";
      const open = state.open.has(s.host);
      const toggle = button(open ? "Hide targets" : "Targets", "secondary targets-toggle",
        (open ? "Hide the targets of " : "Targets of ") + s.host, () => toggleTargets(s.host));
      toggle.setAttribute("aria-expanded", String(open));
      toggle.setAttribute("aria-controls", panelId(s.host));
      toggle.dataset.key = s.host + "|toggle";
      actions.append(toggle,
        button("Edit", "secondary edit", "Edit " + s.host, () => startEdit(s)),
        button("Delete", "danger delete", "Delete " + s.host, () => askDelete(s)));
      cell(tr, "Actions", actions);
      body.append(tr);
      if (open) body.append(targetsRow(s));
    }
    if (shown.length === 0) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = document.createElement("td");
      td.colSpan = 5;
      td.textContent = state.servers.length === 0
        ? "No servers registered yet. Add one with the form."
        : "No server matches \u201c" + $("filter").value.trim() + "\u201d.";
      tr.append(td);
      body.append(tr);
    }
    $("shown").textContent = needle
      ? "Showing " + shown.length + " of " + state.servers.length
      : "";
    restoreInputs(body, kept);
  }

  // keepInputs notes what the person typed in the list's fields (a value other than
  // the one drawn, data-drawn) and which element has the focus (by data-key: server,
  // target, role), so that redrawing the list loses neither.
  function keepInputs(root) {
    const values = new Map();
    root.querySelectorAll("[data-key]").forEach((e) => {
      if (e.tagName !== "BUTTON" && "drawn" in e.dataset && e.value !== e.dataset.drawn) values.set(e.dataset.key, e.value);
    });
    const active = document.activeElement;
    return { values, focus: active && root.contains(active) ? active.dataset.key : undefined };
  }

  function restoreInputs(root, kept) {
    root.querySelectorAll("[data-key]").forEach((e) => {
      if (kept.values.has(e.dataset.key) && e.tagName !== "BUTTON") e.value = kept.values.get(e.dataset.key);
    });
    if (kept.focus) {
      // The element itself, else (a removed target's button) its server's Targets button.
      const keys = [kept.focus, kept.focus.split("|")[0] + "|toggle"];
      const all = [...root.querySelectorAll("[data-key]")];
      const e = keys.map((k) => all.find((n) => n.dataset.key === k)).find(Boolean);
      if (e) e.focus();
    }
  }

  function button(text, cls, label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = cls;
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", onClick);
    return b;
  }

  // timeOf shows an RFC 3339 time as local "YYYY-MM-DD HH:MM:SS", with the exact
  // value the API sent in the tooltip and the datetime attribute.
  function timeOf(rfc3339) {
    const t = document.createElement("time");
    const d = new Date(rfc3339);
    if (!rfc3339 || isNaN(d)) {
      t.textContent = rfc3339 || "–";
      return t;
    }
    const p = (n) => String(n).padStart(2, "0");
    t.dateTime = rfc3339;
    t.title = rfc3339;
    t.textContent = d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) +
      " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
    return t;
  }

  function renderFacts() {
    $("revision").textContent = state.revision === null ? "–" : String(state.revision);
    $("server-count").textContent = String(state.servers.length);
    let tok;
    if (currentToken()) tok = "entered for this session";
    else if (state.tokenNeeded === true) tok = "needed \u2014 enter it below";
    else if (state.tokenNeeded === false) tok = "not needed";
    else tok = "not known yet";
    $("token-state").textContent = tok;
    $("token-forget").hidden = !currentToken();
    if (currentToken()) $("token-panel").hidden = false;
    renderCurl();
  }

  $("filter").addEventListener("input", renderList);
  $("refresh").addEventListener("click", async () => {
    if (await loadServers()) say("ok", "List refreshed (revision " + state.revision + ").");
    await loadProxies();
  });

  // ---- form: add and edit ----

  function clearErrors() {
    for (const f of FIELDS) {
      const e = $(f + "-error");
      e.hidden = true;
      e.textContent = "";
      $(f).removeAttribute("aria-invalid");
    }
    $("form-error").hidden = true;
  }

  function showError(result) {
    const field = fieldOf(result);
    if (field) {
      const e = $(field + "-error");
      e.textContent = result.error;
      e.hidden = false;
      $(field).setAttribute("aria-invalid", "true");
      $(field).focus();
    }
    const summary = $("form-error");
    summary.textContent = field
      ? "Not saved: fix the marked field and save again."
      : "Not saved: " + result.error;
    summary.hidden = false;
  }

  function setMode(host) {
    state.editing = host;
    const editing = host !== null;
    $("form-title").textContent = editing ? "Edit " + host : "Add a server";
    $("save").textContent = editing ? "Save changes" : "Add server";
    $("cancel-edit").hidden = !editing;
    $("host").readOnly = editing;
    $("host-hint").textContent = editing
      ? "The name cannot change; to rename, add the new name and delete the old one."
      : "Letters, digits, . _ -; matched exactly.";
    $("editor").classList.toggle("editing", editing);
  }

  // startEdit fills the form with a server. A server with several targets is edited
  // without the address field: its targets change in its targets panel, and saving
  // sends them as they stand.
  function startEdit(server) {
    clearErrors();
    setMode(server.host);
    const ts = targetsOf(server);
    state.editTargets = ts.length;
    $("host").value = server.host;
    $("ipAddress").value = ts.length === 1 ? ts[0].address : "";
    $("serviceName").value = server.serviceName || "";
    $("healthPath").value = server.healthCheck ? String(server.healthCheck.path) : "";
    showAddressField(ts.length === 1, server.host, ts.length);
    (ts.length === 1 ? $("ipAddress") : $("serviceName")).focus();
    $("editor").scrollIntoView({ block: "nearest" });
  }

  function showAddressField(show, host, count) {
    $("address-field").hidden = !show;
    $("targets-note").hidden = show;
    $("targets-note").textContent = show ? "" : host + " has " + count +
      " targets: change them with \u201cTargets\u201d on its row. Saving here keeps them as they are.";
  }

  function resetForm() {
    setMode(null);
    state.editTargets = 0;
    showAddressField(true);
    $("server-form").reset();
    clearErrors();
  }

  $("cancel-edit").addEventListener("click", () => { resetForm(); $("host").focus(); });
  $("server-form").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && state.editing !== null) { resetForm(); $("host").focus(); }
  });

  // checkExisting warns, while adding, that the name is taken: register replaces it.
  function checkExisting() {
    if (state.editing !== null) return;
    const name = $("host").value.trim();
    const hit = state.servers.find((s) => s.host === name);
    const n = hit ? targetsOf(hit).length : 0;
    $("host-hint").textContent = !hit ? "Letters, digits, . _ -; matched exactly."
      : n === 1 ? name + " is already registered (" + hit.ipAddress + "); adding replaces it."
      : name + " is already registered with " + n + " targets; adding replaces them with this one address.";
  }
  $("host").addEventListener("input", checkExisting);

  $("server-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors();
    const values = {};
    for (const f of FIELDS) values[f] = $(f).value.trim();
    const editing = state.editing;
    const save = $("save");
    save.disabled = true;
    let result;
    try {
      const add = { host: values.host, ipAddress: values.ipAddress, serviceName: values.serviceName };
      if (values.healthPath) add.healthCheck = { path: values.healthPath };
      result = editing === null
        ? (await call("POST", "/api/servers/register", add)).result
        : await saveEdit(editing, values);
    } finally {
      save.disabled = false;
    }
    if (result === null) return; // the person kept the server as it was
    if (!result.success) {
      showError(result);
      return;
    }
    const rev = typeof result.revision === "number" ? " (revision " + result.revision + ")" : "";
    const to = result.server ? targetsOf(result.server) : [];
    say("ok", (editing === null ? "Registered " : "Saved ") + values.host + " \u2192 " +
      (to.length > 1 ? to.length + " targets" : values.ipAddress) + rev + ".");
    resetForm();
    await loadServers();
    watchWrite(result.revision);
    $("host").focus();
  });

  // saveEdit writes the edited server with its whole target set and health check, read
  // from the registrar just before, so that no target is dropped: with one target, the
  // address field replaces its address (weight and state kept); with several, they are
  // sent as they stand. The health check keeps its other settings when only its path
  // changes; an empty path turns it off. It resolves to the API's result, or null when
  // the person chose not to leave the server without an active target.
  async function saveEdit(host, values) {
    const fresh = await call("GET", serverPath(host));
    if (!fresh.result.success) return fresh.result;
    const hc = fresh.result.server.healthCheck;
    const ts = targetsOf(fresh.result.server).map(plainTarget);
    if (state.editTargets === 1 && ts.length !== 1) {
      await loadServers();
      return { success: false, error: host + " has " + ts.length + " targets now (changed since this edit began); " +
        "the list shows them: open Edit again." };
    }
    const body = { serviceName: values.serviceName, targets: ts };
    if (values.healthPath) body.healthCheck = Object.assign({}, hc, { path: values.healthPath });
    if (state.editTargets === 1) { // the form showed the address field: it is the one target's
      ts[0].address = values.ipAddress;
      body.ipAddress = values.ipAddress; // so an address error names the address field
    }
    return writeSet(host, "save " + host, serverPath(host), "PUT", body, ts);
  }

  // ---- targets ----

  // targetsOf is a server's target set; a registrar from before target sets sends only
  // ipAddress, one active target of weight 1.
  function targetsOf(server) {
    if (server && Array.isArray(server.targets) && server.targets.length > 0) return server.targets;
    return [{ address: String((server && server.ipAddress) || ""), weight: 1, state: "active", health: "up" }];
  }

  // plainTarget is a target as a write sends it (health is the registrar's to set).
  const plainTarget = (t) => ({ address: t.address, weight: t.weight, state: t.state });

  // takesRequests: active with a weight above 0 (health aside), the registrar's rule
  // for a set that is not left without an active target.
  const takesRequests = (t) => t.state !== "draining" && Number(t.weight) > 0;

  // plainOne: one active target of weight 1 that is up, shown as the address alone.
  function plainOne(ts) {
    return ts.length === 1 && ts[0].state !== "draining" && Number(ts[0].weight) === 1 && ts[0].health !== "down";
  }

  const panelId = (host) => "targets-" + host;
  const targetsPath = (host) => serverPath(host) + "/targets";
  const targetPath = (host, address) => serverPath(host) + "/targets/" + encodeURIComponent(address);

  // addressOf is the list's Address cell: the address, as before target sets, for a
  // plain one-target server; else each target with what sets it apart.
  function addressOf(server) {
    const ts = targetsOf(server);
    if (plainOne(ts)) return server.ipAddress || ts[0].address;
    const ul = document.createElement("ul");
    ul.className = "target-summary";
    for (const t of ts) {
      const li = document.createElement("li");
      li.dataset.address = t.address;
      const a = document.createElement("span");
      a.className = "addr";
      a.textContent = t.address;
      li.append(a);
      for (const b of exceptions(t, ts.length > 1)) li.append(" ", b);
      ul.append(li);
    }
    return ul;
  }

  // exceptions are the badges the list shows by a target's address: its weight (when
  // the set has several targets, or it is not 1), and draining and down; active and
  // up go without saying there, and the targets panel shows every word.
  function exceptions(t, withWeight) {
    const out = [];
    if (withWeight || Number(t.weight) !== 1) {
      const b = badgeOf(Number(t.weight) === 0 ? "zero" : "weight");
      b.textContent = "weight " + t.weight;
      out.push(b);
    }
    if (t.state === "draining") out.push(badgeOf("draining"));
    if (t.health === "down") out.push(badgeOf("down"));
    return out;
  }

  function toggleTargets(host) {
    if (state.open.has(host)) state.open.delete(host); else state.open.add(host);
    renderList();
  }

  // targetsRow is the panel under a server's row: its targets with their weight, state
  // and health and the controls that change one; the blue/green switch; adding one.
  function targetsRow(server) {
    const host = server.host;
    const ts = targetsOf(server);
    const tr = document.createElement("tr");
    tr.className = "targets-row";
    tr.dataset.targetsOf = host;
    const td = document.createElement("td");
    td.colSpan = 5;
    td.className = "targets-cell";
    const panel = document.createElement("section");
    panel.id = panelId(host);
    panel.className = "targets-panel";
    panel.setAttribute("aria-label", "Targets of " + host);
    td.append(panel);
    tr.append(td);

    const table = document.createElement("table");
    table.className = "targets";
    const cap = document.createElement("caption");
    cap.textContent = "Targets of " + host + " (" + ts.length + ")";
    const head = document.createElement("thead");
    const hr = document.createElement("tr");
    for (const h of ["Address", "Weight", "State", "Health", "Actions"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = h;
      hr.append(th);
    }
    head.append(hr);
    const body = document.createElement("tbody");
    for (const t of ts) body.append(targetLine(server, ts, t));
    table.append(cap, head, body);

    const err = document.createElement("p");
    err.className = "form-error targets-error";
    err.setAttribute("role", "alert");
    err.textContent = state.panelError.get(host) || "";
    err.hidden = !state.panelError.has(host);

    panel.append(table, checkLine(server), err, switchBlock(server, ts), addForm(server, ts));
    return tr;
  }

  function targetLine(server, ts, t) {
    const host = server.host;
    const key = host + "|" + t.address + "|";
    const tr = document.createElement("tr");
    tr.dataset.address = t.address;
    tr.dataset.state = t.state;
    tr.dataset.health = t.health || "up";
    const addr = document.createElement("span");
    addr.className = "addr";
    addr.textContent = t.address;
    cell(tr, "Address", addr);

    const form = document.createElement("form");
    form.className = "weight-form";
    form.noValidate = true;
    const label = document.createElement("label");
    const hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = "Weight of " + t.address;
    const input = document.createElement("input");
    input.type = "number";
    input.min = "0";
    input.max = "100";
    input.step = "1";
    input.inputMode = "numeric";
    input.className = "weight";
    input.value = input.dataset.drawn = String(t.weight);
    input.dataset.key = key + "weight";
    label.append(hidden, input);
    const set = document.createElement("button");
    set.type = "submit";
    set.className = "secondary";
    set.textContent = "Set";
    set.setAttribute("aria-label", "Set the weight of " + t.address);
    set.dataset.key = key + "set";
    form.append(label, set);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const w = weightOf(input);
      if (w === null) {
        panelFail(host, "weight of " + t.address + ": enter a whole number from 0 to 100 (got \u201c" + input.value + "\u201d).");
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      const change = "set the weight of " + t.address + " to " + w; // the same, to do and done
      changeOne(server, [change, change], "PATCH", t.address, { weight: w },
        ts.map((u) => u.address === t.address ? Object.assign({}, u, { weight: w }) : u));
    });
    cell(tr, "Weight", form);

    cell(tr, "State", badgeOf(t.state === "draining" ? "draining" : "active"));
    cell(tr, "Health", badgeOf(t.health === "down" ? "down" : "up"));

    const actions = document.createElement("div");
    actions.className = "row-actions";
    const draining = t.state === "draining";
    const next = draining ? "active" : "draining";
    const flip = button(draining ? "Activate" : "Drain", "secondary " + (draining ? "activate" : "drain"),
      (draining ? "Activate " : "Drain ") + t.address, () =>
        changeOne(server, draining ? ["activate " + t.address, "activated " + t.address] : ["drain " + t.address, "drained " + t.address], "PATCH", t.address, { state: next },
          ts.map((u) => u.address === t.address ? Object.assign({}, u, { state: next }) : u)));
    flip.dataset.key = key + "flip";
    actions.append(flip);
    if (ts.length > 1) {
      const rm = button("Remove", "danger remove", "Remove " + t.address + " from " + host, () =>
        changeOne(server, ["remove " + t.address, "removed " + t.address], "DELETE", t.address, undefined,
          ts.filter((u) => u.address !== t.address)));
      rm.dataset.key = key + "remove";
      actions.append(rm);
    }
    cell(tr, "Actions", actions);
    return tr;
  }

  // checkLine says how the registrar checks the targets' health, if it does.
  function checkLine(server) {
    const p = document.createElement("p");
    p.className = "hint check-line";
    const hc = server.healthCheck;
    p.textContent = hc
      ? "Health check: GET " + hc.path + " on each target every " + hc.interval + " (timeout " + hc.timeout +
        "); down after " + plural(hc.unhealthyThreshold, "failed check", "failed checks in a row") +
        ", up again after " + plural(hc.healthyThreshold, "passed one", "passed ones") + "."
      : "No health check: every target counts as up. Set a health check path with Edit.";
    return p;
  }

  // weightOf is the whole number 0–100 in a weight field, or null.
  function weightOf(input) {
    const v = input.value.trim();
    const w = Number(v);
    return v !== "" && Number.isInteger(w) && w >= 0 && w <= 100 ? w : null;
  }

  function badgeOf(word) {
    const b = document.createElement("span");
    b.className = "badge " + word;
    b.textContent = word;
    return b;
  }

  // swapped is the blue/green switch of a set: the draining targets become active and
  // the active ones draining, weights kept.
  const swapped = (ts) => ts.map((t) => Object.assign(plainTarget(t), { state: t.state === "draining" ? "active" : "draining" }));

  function switchBlock(server, ts) {
    const host = server.host;
    const div = document.createElement("div");
    div.className = "switch";
    const hint = document.createElement("p");
    hint.className = "hint";
    const canSwitch = ts.some((t) => t.state === "draining") && ts.some((t) => t.state !== "draining");
    if (!canSwitch) {
      hint.textContent = ts.length === 1
        ? "Blue/green: add the new version as a draining target, then switch to it here in one step."
        : "Blue/green: drain the targets that are to stand by; a switch button then swaps them in one step.";
      div.append(hint);
      return div;
    }
    const b = button("Switch blue/green", "switch-button", "Switch blue/green for " + host +
      ": make the draining targets active and drain the active ones", () => switchBlueGreen(host, b));
    b.dataset.key = host + "|switch";
    const to = ts.filter((t) => t.state === "draining").map((t) => t.address);
    hint.textContent = "One write: " + to.join(", ") + (to.length === 1 ? " becomes" : " become") +
      " active and the active targets drain. The page waits until every proxy routes the new set.";
    div.append(b, hint);
    return div;
  }

  function addForm(server, ts) {
    const host = server.host;
    const key = host + "|new|";
    const form = document.createElement("form");
    form.className = "add-target";
    form.noValidate = true;
    form.autocomplete = "off";
    const title = document.createElement("h3");
    title.textContent = "Add a target to " + host;
    const field = (text, input) => {
      const label = document.createElement("label");
      const span = document.createElement("span");
      span.textContent = text;
      label.append(span, input);
      return label;
    };
    const addr = document.createElement("input");
    addr.className = "new-address";
    addr.spellcheck = false;
    addr.setAttribute("autocapitalize", "off");
    addr.dataset.key = key + "address";
    addr.dataset.drawn = "";
    const weight = document.createElement("input");
    weight.type = "number";
    weight.min = "0";
    weight.max = "100";
    weight.step = "1";
    weight.value = weight.dataset.drawn = "1";
    weight.className = "new-weight";
    weight.dataset.key = key + "weight";
    const st = document.createElement("select");
    st.className = "new-state";
    st.dataset.key = key + "state";
    st.dataset.drawn = "active";
    for (const v of ["active", "draining"]) {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = v;
      st.append(o);
    }
    const add = document.createElement("button");
    add.type = "submit";
    add.textContent = "Add target";
    add.setAttribute("aria-label", "Add the target to " + host);
    add.dataset.key = key + "add";
    const row = document.createElement("div");
    row.className = "add-fields";
    row.append(field("Address", addr), field("Weight", weight), field("State", st), add);
    form.append(title, row);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      addr.removeAttribute("aria-invalid");
      weight.removeAttribute("aria-invalid");
      const w = weightOf(weight);
      if (w === null) {
        panelFail(host, "weight: enter a whole number from 0 to 100 (got \u201c" + weight.value + "\u201d).");
        weight.setAttribute("aria-invalid", "true");
        weight.focus();
        return;
      }
      const t = { address: addr.value.trim(), weight: w, state: st.value };
      const ok = await changeOne(server, ["add " + (t.address || "a target"), "added " + t.address], "POST", null, t, ts.concat([t]),
        (result) => {
          const bad = /^(target\.)?weight\b/.test(result.error) ? weight : addr;
          bad.setAttribute("aria-invalid", "true");
          bad.focus();
        }, () => { addr.value = ""; weight.value = "1"; st.value = "active"; });
      if (ok) {
        const e = [...document.querySelectorAll("[data-key]")].find((n) => n.dataset.key === key + "address");
        if (e) e.focus();
      }
    });
    return form;
  }

  // panelFail shows what went wrong in a server's targets panel; it stays until a
  // later target write of that server succeeds.
  function panelFail(host, text) {
    state.panelError.set(host, text);
    const row = document.querySelector("#servers tr.targets-row[data-targets-of=\"" + CSS.escape(host) + "\"]");
    const p = row && row.querySelector(".targets-error");
    if (p) { p.textContent = text; p.hidden = false; }
  }

  // NO_ACTIVE recognises the registrar's refusal of a set without an active target.
  const NO_ACTIVE = /allowNoActive=true/;

  // confirmNoActive asks whether a write may leave host without an active target;
  // it resolves to true only when the person says so.
  function confirmNoActive(host, what) {
    const d = $("confirm-noactive");
    d.returnValue = "";
    $("noactive-title").textContent = "Leave " + host + " with no active target?";
    $("noactive-text").textContent = "After you " + what + ", no target of " + host +
      " is active with a weight above 0: every proxy will answer each request for " + host +
      " with 503 no_active_target until a target is active again.";
    return new Promise((resolve) => {
      d.addEventListener("close", () => resolve(d.returnValue === "allow"), { once: true });
      d.showModal();
    });
  }

  // writeSet sends a write whose result leaves the set after (as far as the page
  // knows). When that has no active target, or the registrar refuses the write because
  // the set it would leave has none, the person is asked first, and the write goes
  // with allowNoActive=true only when they agree. query is added to the path (e.g. a
  // wait). It resolves to the API's result, or null when the person said no.
  async function writeSet(host, what, path, method, body, after, query) {
    const send = (allow) => {
      const q = [query, allow ? "allowNoActive=true" : ""].filter(Boolean).join("&");
      return call(method, q ? path + "?" + q : path, body);
    };
    let allow = false;
    if (after && !after.some(takesRequests)) {
      if (!await confirmNoActive(host, what)) return null;
      allow = true;
    }
    let { result } = await send(allow);
    if (!result.success && !allow && NO_ACTIVE.test(String(result.error))) {
      if (!await confirmNoActive(host, what)) return null;
      ({ result } = await send(true));
    }
    return result;
  }

  // changeOne makes one write of one target (POST adds, PATCH changes, DELETE
  // removes), leaving the others as they are, then redraws the list. words are what
  // it does, to do and done ("drain A", "drained A"). It resolves to whether the write
  // was made.
  async function changeOne(server, words, method, address, body, after, onFail, onDone) {
    const [what, done] = words;
    const host = server.host;
    const path = address === null ? targetsPath(host) : targetPath(host, address);
    const result = await writeSet(host, what, path, method, body, after);
    if (result === null) {
      say("ok", "Nothing changed: " + host + " keeps an active target.");
      return false;
    }
    if (!result.success) {
      panelFail(host, host + ": could not " + what + ": " + result.error);
      if (onFail) onFail(result);
      return false;
    }
    state.panelError.delete(host);
    if (onDone) onDone();
    const rev = typeof result.revision === "number" ? " (revision " + result.revision + ")" : "";
    say("ok", host + ": " + done + rev + ".");
    await loadServers();
    watchWrite(result.revision);
    return true;
  }

  // switchBlueGreen swaps a server's active and draining targets in one write of the
  // whole set (read from the registrar just before, so a change made meanwhile is kept),
  // waiting until every proxy has applied it.
  async function switchBlueGreen(host, b) {
    b.disabled = true;
    b.textContent = "Switching\u2026";
    try {
      const fresh = await call("GET", serverPath(host));
      if (!fresh.result.success) {
        panelFail(host, "Could not switch " + host + ": " + fresh.result.error);
        return;
      }
      const sv = fresh.result.server;
      const after = swapped(targetsOf(sv));
      // A PUT writes the whole server: its health check goes with it, or checking stops.
      const body = { serviceName: sv.serviceName, targets: after };
      if (sv.healthCheck) body.healthCheck = sv.healthCheck;
      const result = await writeSet(host, "switch blue/green", serverPath(host), "PUT",
        body, after, "wait=applied&timeout=10s");
      if (result === null) {
        say("ok", "Nothing changed: " + host + " keeps an active target.");
        return;
      }
      if (!result.success) {
        panelFail(host, "Could not switch " + host + ": " + result.error);
        return;
      }
      state.panelError.delete(host);
      const now = after.filter(takesRequests).map((t) => t.address).join(", ") || "no target";
      let live;
      if (result.applied && !result.appliedBy) live = "no proxy polls this registrar yet";
      else if (result.applied) live = "live: applied by all " + plural(result.appliedBy, "proxy", "proxies");
      else live = "applied by " + (result.appliedBy || 0) + " so far; not yet by " +
        (Array.isArray(result.pending) ? result.pending.map((p) => String(p.proxy)).join(", ") : "some proxies");
      say("ok", "Switched " + host + " (revision " + result.revision + "): new requests go to " + now + "; " + live + ".");
      await loadServers();
      watchWrite(result.revision);
    } finally {
      b.disabled = false;
      b.textContent = "Switch blue/green";
    }
  }

  // ---- delete, with confirmation ----

  function askDelete(server) {
    state.pendingDelete = server.host;
    // By the spec returnValue can outlive a close and Escape sets none, so a stale
    // "delete" from an earlier confirmation must never be read as this one's answer.
    $("confirm-delete").returnValue = "";
    $("confirm-title").textContent = "Delete " + server.host + "?";
    const n = targetsOf(server).length;
    $("confirm-text").textContent = "Requests for " + server.host + " (now routed to " +
      (n === 1 ? server.ipAddress : n + " targets") + ") will get 404 from the proxy once it is deleted.";
    $("confirm-delete").showModal();
  }

  $("confirm-delete").addEventListener("close", async () => {
    const host = state.pendingDelete;
    state.pendingDelete = null;
    if ($("confirm-delete").returnValue !== "delete" || host === null) return;
    const { result } = await call("DELETE", serverPath(host));
    if (!result.success) {
      say("error", "Could not delete " + host + ": " + result.error);
      return;
    }
    const rev = typeof result.revision === "number" ? " (revision " + result.revision + ")" : "";
    say("ok", "Deleted " + host + rev + ".");
    if (state.editing === host) resetForm();
    await loadServers();
    watchWrite(result.revision);
    $("server-list").focus();
  });

  // ---- "how to call the API" ----

  function renderCurl() {
    const base = location.origin;
    const auth = currentToken() || state.tokenNeeded
      ? " \\\n  -H \"Authorization: Bearer $REGISTRAR_TOKEN\"" : "";
    // write is a curl line sending a JSON body (url quoted when it has a query), each
    // element of a list of objects on a line of its own.
    const write = (method, url, body) => "curl -sS -X " + method + " " + url + auth + " \\\n" +
      "  -H 'Content-Type: application/json' \\\n  -d '" +
      JSON.stringify(body).replace(/([[,])\{/g, (m, p) => p + "\n    {") + "'";
    const web1 = { host: "web-1", ipAddress: "10.1.2.3:8080", serviceName: "logs" };
    $("curl-register").textContent = write("POST", base + "/api/servers/register", web1);
    $("curl-register-wait").textContent = write("POST", "'" + base + "/api/servers/register?wait=applied&timeout=5s'", web1);
    $("curl-list").textContent = "curl -sS " + base + "/api/servers" + auth;
    $("curl-proxies").textContent = "curl -sS " + base + "/api/proxies" + auth;
    $("curl-delete").textContent = "curl -sS -X DELETE " + base + "/api/servers/web-1" + auth;
    $("curl-switch").textContent = write("PUT", "'" + base + "/api/servers/web-1?wait=applied&timeout=10s'",
      { serviceName: "logs", healthCheck: { path: "/healthz" },
        targets: [{ address: "10.1.2.3:8080", state: "draining" }, { address: "10.1.2.4:8080", state: "active" }] });
    $("curl-drain").textContent = write("PATCH", base + "/api/servers/web-1/targets/10.1.2.3%3A8080", { state: "draining" });
    $("curl-token-note").textContent = auth
      ? "Set REGISTRAR_TOKEN in your shell to the registrar's token first."
      : "When the registrar runs with -token, add -H \"Authorization: Bearer $REGISTRAR_TOKEN\" to each call.";
  }

  // ---- proxies: which revision each has applied (GET /api/proxies) ----

  // proxies.watch is the revision of this page's last write while it becomes live:
  // the strip then says how many proxies have applied it, refreshing every second,
  // until all have or WATCH_MS pass. body[data-proxies] says how the last load ended.
  const PROXY_EVERY_MS = 5000, WATCH_EVERY_MS = 1000, WATCH_MS = 60000;
  const proxies = { list: [], revision: null, lineage: "", watch: null, watchUntil: 0, timer: null };

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function ago(seconds) {
    const s = Math.round(Number(seconds) || 0);
    if (s < 90) return s + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    return Math.round(s / 3600) + " h";
  }

  // hasApplied: the proxy reported revision rev (or later) of the registrar's lineage.
  const hasApplied = (p, rev) => p.lineage === proxies.lineage && Number(p.revision) >= rev;

  function proxyText(p) {
    const name = String(p.proxy);
    if (p.state === "current") return name + " \u2014 at revision " + p.revision;
    if (p.state === "behind") {
      return name + " \u2014 behind by " + plural(Number(p.revisionsBehind), "revision", "revisions") +
        " for " + ago(p.behindSeconds) + " (at revision " + p.revision + ")";
    }
    return name + " \u2014 gone: no poll for " + ago(p.silentSeconds) + " (last at revision " + p.revision + ")";
  }

  function renderProxies() {
    const list = proxies.list;
    const counts = { current: 0, behind: 0, gone: 0 };
    for (const p of list) if (p.state in counts) counts[p.state]++;
    const summary = $("proxy-summary");
    let text;
    if (list.length === 0) {
      text = "No proxy has polled this registrar yet.";
    } else if (counts.current === list.length) {
      text = plural(list.length, "proxy", "proxies") + ", all at revision " + proxies.revision + ".";
    } else {
      const parts = [];
      if (counts.current) parts.push(counts.current + " at revision " + proxies.revision);
      if (counts.behind) parts.push(counts.behind + " behind");
      if (counts.gone) parts.push(counts.gone + " gone");
      text = plural(list.length, "proxy", "proxies") + ": " + parts.join(", ") + ".";
    }
    summary.textContent = text;
    summary.classList.toggle("all-current", list.length > 0 && counts.current === list.length);

    const ul = $("proxy-list");
    ul.replaceChildren();
    for (const p of list) {
      const li = document.createElement("li");
      li.className = ["current", "behind", "gone"].includes(p.state) ? p.state : "";
      li.dataset.proxy = String(p.proxy);
      li.dataset.state = String(p.state);
      li.textContent = proxyText(p);
      li.title = [p.cluster && "cluster " + p.cluster, p.version && "version " + p.version,
        p.replica && "seen by " + p.replica].filter(Boolean).join(", ");
      ul.append(li);
    }
    renderChange();
  }

  // renderChange says how far the page's last write has got: applied by the proxies
  // that are not gone.
  function renderChange() {
    const line = $("proxy-change");
    if (proxies.watch === null) { line.hidden = true; return; }
    const rev = proxies.watch;
    const counted = proxies.list.filter((p) => p.state !== "gone");
    const done = counted.filter((p) => hasApplied(p, rev));
    const all = done.length === counted.length;
    let text;
    if (counted.length === 0) {
      text = "Revision " + rev + ": no proxy is polling this registrar to apply it.";
    } else if (all) {
      text = "Revision " + rev + ": live \u2014 applied by all " + plural(counted.length, "proxy", "proxies") + ".";
    } else {
      text = "Revision " + rev + ": applied by " + done.length + " of " + counted.length + " proxies";
      if (Date.now() > proxies.watchUntil) {
        text += "; not yet by " + counted.filter((p) => !hasApplied(p, rev)).map((p) => String(p.proxy)).join(", ");
      }
      text += ".";
    }
    line.textContent = text;
    line.classList.toggle("live", all && counted.length > 0);
    line.dataset.revision = String(rev);
    line.dataset.live = String(all && counted.length > 0);
    line.hidden = false;
    if (all || Date.now() > proxies.watchUntil) stopWatching();
  }

  function stopWatching() {
    proxies.watchUntil = 0;
  }

  async function loadProxies() {
    // Without the token a call only repeats the 401 (and would pull the focus to the
    // token field every few seconds); the strip waits for the token.
    if (state.tokenNeeded === true && !currentToken()) {
      $("proxy-summary").textContent = "Proxies: enter the token to see them.";
      document.body.dataset.proxies = "failed";
      return;
    }
    const { result } = await call("GET", "/api/proxies");
    if (!result.success) {
      $("proxy-summary").textContent = "Proxies: could not load (" + result.error + ")";
      $("proxy-summary").classList.remove("all-current");
      document.body.dataset.proxies = "failed";
      return;
    }
    proxies.list = Array.isArray(result.proxies) ? result.proxies : [];
    proxies.revision = result.revision;
    proxies.lineage = String(result.lineage || "");
    renderProxies();
    document.body.dataset.proxies = "loaded";
  }

  // scheduleProxies refreshes the strip: every second while a write is being watched,
  // else every few seconds while the tab is visible.
  function scheduleProxies() {
    clearTimeout(proxies.timer);
    const watching = Date.now() < proxies.watchUntil;
    proxies.timer = setTimeout(async () => {
      if (document.visibilityState === "visible") await loadProxies();
      scheduleProxies();
    }, watching ? WATCH_EVERY_MS : PROXY_EVERY_MS);
  }

  // watchWrite follows revision rev of a write this page made until it is live.
  async function watchWrite(rev) {
    if (typeof rev !== "number") return;
    proxies.watch = rev;
    proxies.watchUntil = Date.now() + WATCH_MS;
    await loadProxies();
    scheduleProxies();
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") { loadServers(); loadProxies(); }
  });

  setMode(null);
  renderFacts();
  loadServers().then(loadProxies).then(scheduleProxies);
})();
