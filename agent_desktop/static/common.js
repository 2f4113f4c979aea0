// Shared by the agent desktop and the wallboard: login over HTTP Basic, the websocket with
// reconnects, request ids, and DOM helpers that only ever set text (never HTML).
"use strict";

const CC = (() => {
  /** An element with text/attributes set safely; children are nodes or strings (as text). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "onclick") node.addEventListener("click", value);
      else if (key === "disabled" || key === "hidden") node[key] = Boolean(value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function $(id) { return document.getElementById(id); }

  function setText(id, value) {
    const node = typeof id === "string" ? $(id) : id;
    if (node) node.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
  }

  function clear(node) { node.replaceChildren(); }

  /** "1:05", "1:02:03" from seconds. */
  function duration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "—";
    const s = Math.max(0, Math.floor(Number(seconds)));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? `${h}:` : "") + `${mm}:${String(r).padStart(2, "0")}`;
  }

  function percent(fraction) {
    if (fraction === null || fraction === undefined || !Number.isFinite(Number(fraction))) return "—";
    return `${Math.round(Number(fraction) * 1000) / 10} %`;
  }

  /** UTF-8-safe base64 of a string (btoa alone fails on non-Latin-1 text). */
  function base64Utf8(text) {
    const bytes = new TextEncoder().encode(text);
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  }

  /** POST /api/login; resolves to {token, expires_at, role, agent} or rejects with a readable Error. */
  async function login(user, password) {
    let response;
    try {
      response = await fetch("/api/login", {
        method: "POST", credentials: "same-origin",
        headers: {Authorization: `Basic ${base64Utf8(`${user}:${password}`)}`},
      });
    } catch (err) {
      throw new Error("the server cannot be reached");
    }
    let doc = {};
    try { doc = await response.json(); } catch (err) { doc = {}; }
    if (!response.ok) {
      const wait = response.headers.get("Retry-After");
      const reason = typeof doc.error === "string" ? doc.error : `login failed (HTTP ${response.status})`;
      throw new Error(wait ? `${reason} (retry in ${wait} s)` : reason);
    }
    return doc;
  }

  async function logout() {
    try {
      await fetch("/api/logout", {method: "POST", credentials: "same-origin"});
    } catch (err) { /* the server is gone: the session is gone with it */ }
  }

  /**
   * The live channel.  handlers: onFrame(msg), onOpen(), onWelcome(msg), onLoggedOut(reason, wasWelcomed),
   * onStatus(text).  Reconnects with backoff unless the session ended (4401/4440).
   */
  class Channel {
    constructor(handlers) {
      this.h = handlers;
      this.ws = null;
      this.nextId = 1;
      this.pending = new Map();   // id -> {type, done}
      this.backoff = 1000;
      this.timer = null;
      this.stopped = true;
    }

    start() {
      this.stopped = false;
      this.backoff = 1000;
      this._open();
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      if (this.ws) {
        const ws = this.ws;
        this.ws = null;
        ws.close(1000, "bye");
      }
      this.pending.clear();
    }

    get connected() { return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.welcomed; }

    _open() {
      clearTimeout(this.timer);
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const ws = new WebSocket(`${scheme}://${location.host}/ws`);
      this.ws = ws;
      this.welcomed = false;
      this.h.onStatus && this.h.onStatus("connecting…");
      ws.addEventListener("message", (ev) => {
        if (this.ws !== ws) return;
        let msg;
        try { msg = JSON.parse(ev.data); } catch (err) { return; }
        if (!msg || typeof msg !== "object") return;
        if (msg.type === "welcome") {
          this.welcomed = true;
          this.backoff = 1000;
          this.h.onStatus && this.h.onStatus("connected");
          this.h.onWelcome && this.h.onWelcome(msg);
          return;
        }
        if (msg.type === "result" && msg.id !== undefined && this.pending.has(msg.id)) {
          const entry = this.pending.get(msg.id);
          this.pending.delete(msg.id);
          if (entry.done) entry.done(msg);
        }
        this.h.onFrame && this.h.onFrame(msg);
      });
      ws.addEventListener("close", (ev) => {
        if (this.ws !== ws) return;
        this.ws = null;
        const welcomed = this.welcomed;
        this.welcomed = false;
        for (const [, entry] of this.pending) {
          if (entry.done) entry.done({type: "result", ok: false, request: entry.type, error: "connection lost"});
        }
        this.pending.clear();
        if (this.stopped) return;
        if (ev.code === 4401 || ev.code === 4440) {
          this.stopped = true;
          this.h.onLoggedOut && this.h.onLoggedOut(ev.code === 4440 ? "session expired" : (ev.reason || "logged out"),
                                                   welcomed);
          return;
        }
        const wait = this.backoff;
        this.backoff = Math.min(this.backoff * 2, 30000);
        this.h.onStatus && this.h.onStatus(`disconnected (${ev.code || "no code"}); reconnecting in ${Math.round(wait / 1000)} s`);
        this.timer = setTimeout(() => this._open(), wait);
      });
    }

    /** Send a request; done(result) is called with its result frame.  Returns the id, or null if offline. */
    request(type, body, done) {
      if (!this.connected) {
        if (done) done({type: "result", ok: false, request: type, error: "not connected"});
        return null;
      }
      const id = this.nextId++;
      this.pending.set(id, {type, done});
      this.ws.send(JSON.stringify({type, v: 1, id, ...(body || {})}));
      return id;
    }
  }

  /**
   * Wire a login form (#login with #login-user, #login-password, #login-error) and a Channel.
   * app: {onWelcome(msg), onFrame(msg), onLoggedOut(), onStatus(text)}.
   */
  function session(app) {
    const form = $("login"), errorLine = $("login-error"), notice = $("session-notice");
    let channel = null;

    function showLogin(text) {
      $("app").hidden = true;
      form.hidden = false;
      setText(notice, text || "");
      notice.hidden = !text;
      $("login-password").value = "";
      $("login-user").focus();
    }

    function connect() {
      if (channel) channel.stop();
      channel = new Channel({
        onStatus: app.onStatus,
        onWelcome: (msg) => {
          form.hidden = true;
          notice.hidden = true;
          errorLine.textContent = "";
          $("app").hidden = false;
          app.onWelcome(msg);
        },
        onFrame: app.onFrame,
        onLoggedOut: (reason, welcomed) => {
          if (!welcomed) {         // the probe without a session: the form is already there
            $("app").hidden = true;
            form.hidden = false;
            return;
          }
          app.onLoggedOut && app.onLoggedOut();
          showLogin(`Session expired / logged out (${reason}). Please log in again.`);
        },
      });
      channel.start();
    }

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const user = $("login-user").value.trim(), password = $("login-password").value;
      errorLine.textContent = "";
      if (!user || !password) {
        errorLine.textContent = "Enter your username and password.";
        return;
      }
      $("login-submit").disabled = true;
      try {
        await login(user, password);
        $("login-password").value = "";
        connect();
      } catch (err) {
        errorLine.textContent = err.message;
      } finally {
        $("login-submit").disabled = false;
      }
    });

    // A still-valid session cookie logs in at once; without one the server waits for an auth frame,
    // so the form is shown meanwhile and this probe is closed on a real login.
    showLogin("");
    connect();

    return {
      request: (type, body, done) => channel ? channel.request(type, body, done)
                                             : (done && done({ok: false, error: "not connected"}), null),
      signOut: async () => {
        if (channel) channel.stop();
        channel = null;
        await logout();
        app.onLoggedOut && app.onLoggedOut();
        showLogin("You are logged out.");
      },
    };
  }

  return {el, $, setText, clear, duration, percent, base64Utf8, login, logout, Channel, session};
})();
