// The server-management page of the Switchyard registrar.
//
// It talks only to the public API (/api/servers...), the same calls the "How to call the
// API" panel shows, so what works here works from a CMS or a shell. Promises it keeps:
//   - every failed call is shown, next to the field it concerns when the error names one,
//     and an error stays on screen until the person closes it or the same form succeeds;
//   - the token, when the registrar asks for one (a 401), lives in sessionStorage only:
//     it is gone when the tab is closed and never shown again after it is entered;
//   - text from the API is put on the page as text (textContent), never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "switchyard.registrar.token";
  const FIELDS = ["host", "ipAddress", "serviceName"];

  const $ = (id) => document.getElementById(id);

  const state = {
    servers: [],       // as the last GET /api/servers returned them, sorted by host
    revision: null,    // the registrar's revision, from a list or a write
    tokenNeeded: null, // null: not known yet; true: a 401 was seen; false: the API answered without a token
    editing: null,     // the host being edited, or null when the form adds a server
    pendingDelete: null,
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
  function fieldOf(result) {
    if (FIELDS.includes(result.field)) return result.field;
    const msg = String(result.error || "");
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
    return [server.host, server.ipAddress, server.serviceName]
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
    body.replaceChildren();
    for (const s of shown) {
      const tr = document.createElement("tr");
      tr.dataset.host = s.host;
      const name = cell(tr, "Name", s.host);
      name.className = "name";
      cell(tr, "Address", s.ipAddress || "");
      cell(tr, "Service", s.serviceName || "");
      cell(tr, "Last change", timeOf(s.updatedAt));
      const actions = document.createElement("div");
      actions.className = "row-actions";
      actions.append(
        button("Edit", "secondary edit", "Edit " + s.host, () => startEdit(s)),
        button("Delete", "danger delete", "Delete " + s.host, () => askDelete(s)));
      cell(tr, "Actions", actions);
      body.append(tr);
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

  function startEdit(server) {
    clearErrors();
    setMode(server.host);
    $("host").value = server.host;
    $("ipAddress").value = server.ipAddress || "";
    $("serviceName").value = server.serviceName || "";
    $("ipAddress").focus();
    $("editor").scrollIntoView({ block: "nearest" });
  }

  function resetForm() {
    setMode(null);
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
    $("host-hint").textContent = hit
      ? name + " is already registered (" + hit.ipAddress + "); adding replaces it."
      : "Letters, digits, . _ -; matched exactly.";
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
    let answer;
    try {
      answer = editing === null
        ? await call("POST", "/api/servers/register", values)
        : await call("PUT", serverPath(editing),
            { ipAddress: values.ipAddress, serviceName: values.serviceName });
    } finally {
      save.disabled = false;
    }
    const { result } = answer;
    if (!result.success) {
      showError(result);
      return;
    }
    const rev = typeof result.revision === "number" ? " (revision " + result.revision + ")" : "";
    say("ok", (editing === null ? "Registered " : "Saved ") + values.host + " \u2192 " +
      values.ipAddress + rev + ".");
    resetForm();
    await loadServers();
    watchWrite(result.revision);
    $("host").focus();
  });

  // ---- delete, with confirmation ----

  function askDelete(server) {
    state.pendingDelete = server.host;
    // By the spec returnValue can outlive a close and Escape sets none, so a stale
    // "delete" from an earlier confirmation must never be read as this one's answer.
    $("confirm-delete").returnValue = "";
    $("confirm-title").textContent = "Delete " + server.host + "?";
    $("confirm-text").textContent = "Requests for " + server.host + " (now routed to " +
      server.ipAddress + ") will get 404 from the proxy once it is deleted.";
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
    $("curl-register").textContent =
      "curl -sS -X POST " + base + "/api/servers/register" + auth + " \\\n" +
      "  -H 'Content-Type: application/json' \\\n" +
      "  -d '{\"host\":\"web-1\",\"ipAddress\":\"10.1.2.3:8080\",\"serviceName\":\"logs\"}'";
    $("curl-register-wait").textContent =
      "curl -sS -X POST '" + base + "/api/servers/register?wait=applied&timeout=5s'" + auth + " \\\n" +
      "  -H 'Content-Type: application/json' \\\n" +
      "  -d '{\"host\":\"web-1\",\"ipAddress\":\"10.1.2.3:8080\",\"serviceName\":\"logs\"}'";
    $("curl-list").textContent = "curl -sS " + base + "/api/servers" + auth;
    $("curl-proxies").textContent = "curl -sS " + base + "/api/proxies" + auth;
    $("curl-delete").textContent = "curl -sS -X DELETE " + base + "/api/servers/web-1" + auth;
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
