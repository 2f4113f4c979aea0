// The agent desktop: state buttons, the screen pop, call controls, wrap-up, tickets, search.
// Every text from the server goes through textContent (CC.el / CC.setText), never HTML.
// The UI changes state only on `agent` and `call` frames; `result` frames only report errors/data.
"use strict";

(() => {
  const {el, $, setText, clear, duration} = CC;

  const CALL_ACTIVE = new Set(["connected", "held", "resumed", "consulting", "transfer-cancelled"]);
  const view = {
    agent: null,        // the login, from welcome
    state: null,        // the last `agent` frame body
    stateSince: null,   // local ms when the current state began
    call: null,         // the current/last pop, with `state`
    wrapCall: null,     // the call id the wrap-up panel is for
  };

  function message(text, kind) {
    const line = $("message");
    line.textContent = text || "";
    line.className = `message ${kind || ""}`;
  }

  /** Send a request; report its error (never assume success). */
  function ask(type, body, onOk) {
    desk.request(type, body, (result) => {
      if (result.ok) {
        if (onOk) onOk(result);
      } else {
        message(`${type.replace("_", " ")}: ${result.error || "refused"}`, "error");
      }
    });
  }

  // -- agent state ---------------------------------------------------------------------------------
  function sinceMs(since) {
    // `since` is the ACD's clock in seconds since the epoch; trust it only if it is plausible here.
    const now = Date.now();
    if (typeof since === "number" && Math.abs(now - since * 1000) < 86400000) return Math.min(since * 1000, now);
    return now;
  }

  function showAgent(body) {
    view.state = body;
    if (!body) {
      setText("agent-state", "unknown");
      $("agent-state").dataset.state = "";
      setText("agent-reason", "");
      view.stateSince = null;
      renderButtons();
      return;
    }
    setText("agent-state", body.state);
    $("agent-state").dataset.state = String(body.state || "");
    $("agent-reason").textContent = body.reason ? `(${body.reason})` : "";
    view.stateSince = sinceMs(body.since);
    if (body.state === "wrap-up" && body.call_id) showWrapup(body.call_id);
    tick();
    renderButtons();
  }

  function tick() {
    setText("state-time", view.stateSince === null ? null : duration((Date.now() - view.stateSince) / 1000));
  }

  function renderButtons() {
    const state = view.state ? view.state.state : null;
    $("btn-ready").disabled = state === "ready" || state === "on-call" || state === "reserved";
    $("btn-not-ready").disabled = state === "logged-out" || state === "on-call" || state === "reserved";
    $("btn-acd-login").disabled = state !== null && state !== "logged-out";
    $("btn-acd-logout").disabled = state === "logged-out";
    const callState = view.call ? view.call.state : null;
    const active = CALL_ACTIVE.has(callState);
    $("btn-hold").disabled = !["connected", "resumed", "transfer-cancelled"].includes(callState);
    $("btn-unhold").disabled = callState !== "held";
    $("btn-hangup").disabled = !active;
    $("btn-transfer").disabled = !active || callState === "consulting";
    $("btn-cancel-transfer").hidden = callState !== "consulting";   // only while a consultation runs
  }

  // -- the screen pop ------------------------------------------------------------------------------
  function money(value) { return value === null || value === undefined ? null : String(value); }

  function showPop(pop) {
    view.call = pop;
    view.pickedCustomer = null;
    hideWrapup();
    $("pop").hidden = false;
    $("no-call").hidden = true;
    const c = pop.customer && typeof pop.customer === "object" ? pop.customer : null;
    const nc = pop.new_customer && typeof pop.new_customer === "object" ? pop.new_customer : null;
    const candidates = Array.isArray(pop.candidates) ? pop.candidates : [];

    setText("pop-name", c ? c.name : (candidates.length ? `${pop.caller_name || "Caller"} (several matches)`
                                                         : (pop.caller_name || "Unknown caller")));
    $("pop-vip").hidden = !(c && c.vip);
    setText("pop-tier", c ? c.tier : null);
    setText("pop-score", c ? c.value_score : null);
    setText("pop-balance", c ? money(c.balance) : null);
    setText("pop-arrears", c ? money(c.arrears) : null);
    $("pop-arrears").classList.toggle("owing", Boolean(c && c.arrears && Number(c.arrears) > 0));
    setText("pop-ani", pop.ani);
    setText("pop-dnis", pop.dnis);
    setText("pop-queue", pop.queue);
    setText("pop-wait", typeof pop.wait_seconds === "number" ? duration(pop.wait_seconds) : null);
    setText("pop-call-id", pop.call_id);

    const ivr = pop.ivr && typeof pop.ivr === "object" ? pop.ivr : {};
    const path = Array.isArray(ivr.path) ? ivr.path.map((s) => (s && s.digits ? `${s.node} [${s.digits}]` : s && s.node))
      .filter(Boolean) : [];
    const digits = Array.isArray(ivr.digits) ? ivr.digits.join(" ") : "";
    let ivrText = path.length ? path.join(" → ") : "";
    if (digits) ivrText += `${ivrText ? " · " : ""}digits ${digits}`;
    if (ivr.outcome) ivrText += `${ivrText ? " · " : ""}${ivr.outcome}`;
    setText("pop-ivr", ivrText || null);

    // new customer form, prefilled
    $("new-customer").hidden = !nc;
    $("new-customer-name").value = nc ? String(nc.name || "") : "";
    $("new-customer-phone").value = nc ? String(nc.phone || "") : "";

    // several customers share the number
    $("pop-candidates-box").hidden = candidates.length === 0;
    const candList = $("pop-candidates");
    clear(candList);
    for (const cand of candidates) {
      candList.append(el("li", {dataset: {customer: String(cand.id)}},
        el("button", {type: "button", className: "link", text: cand.name,
                      onclick: () => { view.pickedCustomer = cand.id; showHistory(cand.id); }}),
        ` · ${cand.tier || ""}${cand.vip ? " · VIP" : ""}`));
    }

    const tickets = $("pop-tickets");
    clear(tickets);
    for (const t of (c && Array.isArray(c.open_tickets)) ? c.open_tickets : []) {
      tickets.append(el("li", {dataset: {ticket: String(t.id)}},
        el("strong", {text: `#${t.id} ${t.subject || ""}`}),
        ` · ${t.kind || ""} · ${t.status || ""} · ${t.priority || ""}${t.due_at ? ` · due ${t.due_at}` : ""}`));
    }
    if (!tickets.childElementCount) tickets.append(el("li", {className: "muted", text: "none"}));

    const contacts = $("pop-contacts");
    clear(contacts);
    for (const k of (c && Array.isArray(c.recent_contacts)) ? c.recent_contacts : []) {
      const bits = [k.started_at, k.direction, k.queue, k.agent, k.disposition].filter(Boolean).join(" · ");
      contacts.append(el("li", {}, bits, k.notes ? el("div", {className: "muted", text: k.notes}) : null));
    }
    if (!contacts.childElementCount) contacts.append(el("li", {className: "muted", text: "none"}));

    showCallState(pop.state || "ringing");
  }

  function showCallState(state, extra) {
    if (view.call) view.call.state = state;
    const label = state === "transferred" && extra && extra.to ? `transferred to ${extra.to}` : state;
    setText("pop-state", label);
    $("pop-state").dataset.state = String(state || "");
    renderButtons();
  }

  function onCall(msg) {
    if (!view.call || view.call.call_id !== msg.call_id) return;   // a call this desktop never saw pop
    showCallState(msg.state, msg);
    if (msg.state === "ended") showWrapup(msg.call_id);
    if (msg.state === "missed") message("Call missed.", "error");
  }

  // -- wrap-up -------------------------------------------------------------------------------------
  function showWrapup(callId) {
    if (view.wrapCall === callId && !$("wrapup").hidden) return;
    view.wrapCall = callId;
    $("wrapup").hidden = false;
    setText("wrapup-call", `call ${callId}`);
    $("wrapup-notes").value = "";
    $("wrapup-disposition").selectedIndex = 0;
  }

  function hideWrapup() {
    view.wrapCall = null;
    $("wrapup").hidden = true;
  }

  function sendWrapup(done) {
    if (!view.wrapCall) return;
    const callId = view.wrapCall;
    const body = {call_id: callId, disposition: $("wrapup-disposition").value, notes: $("wrapup-notes").value};
    if (done) body.done = true; else body.extend = 30;
    ask("wrap_up", body, () => {
      if (done && view.wrapCall === callId) {
        hideWrapup();
        message("Wrap-up saved.", "ok");
      } else if (!done) {
        message("Wrap-up extended by 30 s.", "ok");
      }
    });
  }

  // -- search and history --------------------------------------------------------------------------
  function showResults(customers) {
    const list = $("search-results");
    clear(list);
    for (const c of customers) {
      list.append(el("li", {dataset: {customer: String(c.id)}},
        el("button", {type: "button", className: "link", text: c.name, onclick: () => showHistory(c.id)}),
        ` · #${c.id} · ${c.tier || ""}${c.matched_number ? ` · ${c.matched_number}` : ""}`,
        c.blacklisted ? el("span", {className: "vip", text: "blacklisted"}) : null));
    }
    if (!customers.length) list.append(el("li", {className: "muted", text: "no customer found"}));
  }

  function showHistory(customerId) {
    ask("history", {customer_id: Number(customerId)}, (result) => {
      const h = result.history || {};
      const list = $("history");
      clear(list);
      $("history-title").hidden = false;
      setText("history-title", `History of customer #${customerId}`);
      for (const t of Array.isArray(h.tickets) ? h.tickets : []) {
        list.append(el("li", {}, el("strong", {text: `ticket #${t.id} ${t.subject || ""}`}), ` · ${t.status || ""}`));
      }
      for (const k of Array.isArray(h.contacts) ? h.contacts : []) {
        list.append(el("li", {}, [k.started_at, k.direction, k.agent, k.disposition].filter(Boolean).join(" · "),
                       k.notes ? el("div", {className: "muted", text: k.notes}) : null));
      }
      if (!list.childElementCount) list.append(el("li", {className: "muted", text: "no history"}));
    });
  }

  // -- frames --------------------------------------------------------------------------------------
  function onFrame(msg) {
    switch (msg.type) {
      case "snapshot":
        showAgent(msg.agent && typeof msg.agent === "object" ? msg.agent : null);
        if (msg.call && typeof msg.call === "object") showPop(msg.call);
        break;
      case "agent": showAgent(msg); break;
      case "pop": showPop(msg); break;
      case "call": onCall(msg); break;
      case "error": message(`server: ${msg.reason || "error"}`, "error"); break;
      default: break;
    }
  }

  function onWelcome(msg) {
    view.agent = msg.agent;
    setText("agent-name", msg.agent);
    setText("agent-role", msg.role ? `(${msg.role})` : "");
    message("");
  }

  function reset() {
    view.state = null;
    view.stateSince = null;
    view.call = null;
    hideWrapup();
    $("pop").hidden = true;
    $("no-call").hidden = false;
    setText("agent-state", null);
    setText("state-time", null);
    renderButtons();
  }

  const desk = CC.session({
    onWelcome, onFrame,
    onLoggedOut: reset,
    onStatus: (text) => setText("conn", text),
  });

  // -- controls ------------------------------------------------------------------------------------
  $("btn-ready").addEventListener("click", () => ask("ready"));
  $("btn-not-ready").addEventListener("click", () => ask("not_ready", {reason: $("reason").value}));
  $("btn-acd-login").addEventListener("click", () => ask("login", {ready: false}));
  $("btn-acd-logout").addEventListener("click", () => ask("logout"));
  $("btn-signout").addEventListener("click", () => { reset(); desk.signOut(); });
  $("btn-hold").addEventListener("click", () => ask("hold"));
  $("btn-unhold").addEventListener("click", () => ask("unhold"));
  $("btn-hangup").addEventListener("click", () => ask("hangup"));
  $("btn-transfer").addEventListener("click", () => {
    const target = $("transfer-target").value.trim();
    if (!target) { message("transfer: enter an extension (6XXX) or queue:<name>", "error"); return; }
    const kind = $("transfer-kind").value;
    ask("transfer", {target, kind},
        () => message(kind === "attended"
          ? `Consulting ${target}: the caller is on hold. Hang up to complete the transfer.`
          : `Transfer to ${target} requested.`, "ok"));
  });
  $("btn-cancel-transfer").addEventListener("click", () => ask("cancel_transfer",
      {}, () => message("Transfer cancelled: back with the caller.", "ok")));
  $("dial-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const number = $("dial-number").value.trim();
    if (!number) { message("dial: enter a number", "error"); return; }
    ask("dial", {number}, () => message(`Dialling ${number}…`, "ok"));
  });
  $("wrapup-done").addEventListener("click", () => sendWrapup(true));
  $("wrapup-extend").addEventListener("click", () => sendWrapup(false));
  $("ticket-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const subject = $("ticket-subject").value.trim();
    if (!subject) { message("ticket: enter a subject", "error"); return; }
    const body = {subject, kind: $("ticket-kind").value};
    if (view.call) {
      body.call_id = view.call.call_id;
      if (view.call.customer && typeof view.call.customer.id === "number") body.customer_id = view.call.customer.id;
      else if (typeof view.pickedCustomer === "number") body.customer_id = view.pickedCustomer;
      const nc = view.call.new_customer;
      if (nc && !body.customer_id) {
        body.description = `Caller: ${$("new-customer-name").value} ${$("new-customer-phone").value}`.trim();
      }
    }
    ask("ticket", body, (result) => {
      $("ticket-subject").value = "";
      const t = result.ticket || {};
      message(`Ticket #${t.id === undefined ? "?" : t.id} opened.`, "ok");
    });
  });
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const query = $("search-query").value.trim();
    if (!query) return;
    ask("search", {query}, (result) => showResults(Array.isArray(result.customers) ? result.customers : []));
  });

  reset();
  setInterval(tick, 1000);
})();
