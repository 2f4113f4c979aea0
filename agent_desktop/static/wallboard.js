// The supervisors' wallboard: a tile per queue, the agent grid with actions, a chart of the recent past.
// Every text from the server goes through textContent (CC.el / CC.setText), never HTML.
"use strict";

(() => {
  const {el, $, setText, clear, duration, percent} = CC;

  const HISTORY_SECONDS = 8 * 3600;      // what the chart keeps (the daemon keeps as much)
  const history = new Map();             // minute start (s) -> {t ms, waiting, sl %}; from the daemon
  let agentRows = new Map();             // agent -> {row, base seconds, at ms}

  function message(text, kind) {
    const line = $("message");
    line.textContent = text || "";
    line.className = `message ${kind || ""}`;
  }

  function num(value, digits) {
    return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits || 0) : "—";
  }

  // -- queue tiles ---------------------------------------------------------------------------------
  const FIELDS = [
    ["waiting", "Waiting", (q) => num(q.waiting)],
    ["longest-wait", "Longest wait", (q) => duration(q.longest_wait)],
    ["service-level", "Service level", (q) => percent(q.service_level)],
    ["asa", "ASA", (q) => (typeof q.asa === "number" ? duration(q.asa) : "—")],
    ["aht", "AHT", (q) => (typeof q.aht === "number" ? duration(q.aht) : "—")],
    ["abandon-rate", "Abandon rate", (q) => percent(q.abandon_rate)],
    ["agents", "Agents", (q) => agentsByState(q.agents_by_state)],
  ];

  function agentsByState(counts) {
    if (!counts || typeof counts !== "object") return "—";
    const parts = Object.entries(counts).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`);
    return parts.length ? parts.join(", ") : "none";
  }

  function renderQueues(queues) {
    const box = $("queues");
    const seen = new Set();
    for (const q of queues) {
      if (!q || typeof q !== "object") continue;
      const name = String(q.queue ?? q.name ?? "?");
      seen.add(name);
      let tile = [...box.children].find((t) => t.dataset.queue === name);
      if (!tile) {
        const dl = el("dl");
        for (const [cls, label] of FIELDS) dl.append(el("dt", {text: label}), el("dd", {className: cls}));
        tile = el("article", {className: "tile", dataset: {queue: name}}, el("h3", {text: name}), dl);
        box.append(tile);
      }
      for (const [cls, , fmt] of FIELDS) tile.querySelector(`dd.${cls}`).textContent = fmt(q);
      const sl = typeof q.service_level === "number" ? q.service_level : null;
      tile.classList.toggle("bad", sl !== null && sl < 0.6);
      tile.classList.toggle("warn", sl !== null && sl >= 0.6 && sl < 0.8);
    }
    for (const tile of [...box.children]) if (!seen.has(tile.dataset.queue)) tile.remove();
  }

  // -- agent grid ----------------------------------------------------------------------------------
  const ACTIONS = [
    ["listen", "Listen", "spy", {mode: "listen"}],
    ["whisper", "Whisper", "spy", {mode: "whisper"}],
    ["barge", "Barge", "spy", {mode: "barge"}],
    ["force-not-ready", "Force not ready", "force_state", {state: "not-ready"}],
    ["force-logout", "Force logout", "force_state", {state: "logged-out"}],
  ];

  function act(agent, label, type, extra) {
    board.request(type, {agent, ...extra}, (result) => {
      if (result.ok) message(`${label} ${agent}: sent.`, "ok");
      else message(`${label} ${agent}: ${result.error || "refused"}`, "error");
    });
  }

  function renderAgents(agents) {
    const body = $("agents").tBodies[0];
    const now = Date.now();
    const next = new Map();
    for (const a of agents) {
      if (!a || typeof a !== "object" || a.agent === undefined) continue;
      const name = String(a.agent);
      let entry = agentRows.get(name);
      if (!entry) {
        const cells = {};
        const row = el("tr", {dataset: {agent: name}}, el("td", {className: "agent-name", text: name}));
        for (const cls of ["agent-state", "agent-reason", "agent-time", "agent-calls", "agent-occupancy"]) {
          cells[cls] = el("td", {className: cls});
          row.append(cells[cls]);
        }
        const actions = el("td", {className: "actions"});
        for (const [key, label, type, extra] of ACTIONS) {
          actions.append(el("button", {type: "button", dataset: {action: key}, text: label,
                                       onclick: () => act(name, label, type, extra)}));
        }
        row.append(actions);
        entry = {row, cells};
      }
      body.append(entry.row);   // keeps the server's order
      entry.row.dataset.state = String(a.state || "");
      entry.cells["agent-state"].textContent = a.state || "—";
      entry.cells["agent-reason"].textContent = a.reason || "";
      entry.cells["agent-calls"].textContent = num(a.calls_handled);
      entry.cells["agent-occupancy"].textContent = percent(a.occupancy);
      entry.base = typeof a.seconds === "number" ? a.seconds : null;
      entry.at = now;
      const onCall = a.state === "on-call" || a.state === "reserved";
      for (const button of entry.row.querySelectorAll("button")) {
        const spy = ["listen", "whisper", "barge"].includes(button.dataset.action);
        button.disabled = spy ? !onCall : a.state === "logged-out" ||
          (button.dataset.action === "force-not-ready" && a.state === "not-ready");
      }
      next.set(name, entry);
    }
    for (const [name, entry] of agentRows) if (!next.has(name)) entry.row.remove();
    agentRows = next;
    tickAgents();
  }

  function tickAgents() {
    const now = Date.now();
    for (const entry of agentRows.values()) {
      entry.cells["agent-time"].textContent = entry.base === null ? "—" : duration(entry.base + (now - entry.at) / 1000);
    }
  }

  // -- chart ---------------------------------------------------------------------------------------
  // The daemon sends [minute start, waiting, service level] per minute: the last hours on connect, the
  // last minutes with each frame.  A minute sent again replaces the one held.
  function record(chart) {
    for (const p of chart) {
      if (!Array.isArray(p) || typeof p[0] !== "number" || typeof p[1] !== "number") continue;
      history.set(p[0], {t: p[0] * 1000, waiting: p[1], sl: typeof p[2] === "number" ? p[2] * 100 : null});
    }
    const oldest = Date.now() / 1000 - HISTORY_SECONDS;
    for (const minute of history.keys()) if (minute < oldest) history.delete(minute);
    drawChart();
  }

  function drawChart() {
    const canvas = $("chart");
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    const ratio = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || 480, cssH = canvas.clientHeight || 220;
    if (canvas.width !== Math.round(cssW * ratio) || canvas.height !== Math.round(cssH * ratio)) {
      canvas.width = Math.round(cssW * ratio);
      canvas.height = Math.round(cssH * ratio);
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    const pad = {l: 34, r: 38, t: 10, b: 20};
    const w = cssW - pad.l - pad.r, h = cssH - pad.t - pad.b;
    const span = Number($("chart-span").value) * 1000;
    const end = Date.now(), start = end - span;
    const points = [...history.values()].filter((p) => p.t >= start).sort((a, b) => a.t - b.t);
    const maxWaiting = Math.ceil(Math.max(4, ...points.map((p) => p.waiting)) / 4) * 4;
    const x = (t) => pad.l + ((t - start) / span) * w;
    const yW = (v) => pad.t + h - (v / maxWaiting) * h;
    const yS = (v) => pad.t + h - (v / 100) * h;

    ctx.font = "11px system-ui, sans-serif";
    ctx.strokeStyle = "#e4e7eb";
    ctx.fillStyle = "#5b6672";
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + (h * i) / 4;
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(pad.l + w, y); ctx.stroke();
      ctx.textAlign = "right";
      ctx.fillText(String(Math.round(maxWaiting * (1 - i / 4))), pad.l - 4, y + 4);
      ctx.textAlign = "left";
      ctx.fillText(`${100 - 25 * i}%`, pad.l + w + 4, y + 4);
    }
    ctx.textAlign = "left";
    ctx.fillText(`-${Math.round(span / 60000)} min`, pad.l, cssH - 4);
    ctx.textAlign = "right";
    ctx.fillText("now", pad.l + w, cssH - 4);

    function line(color, pick, y) {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      let drawing = false;
      for (const p of points) {
        const v = pick(p);
        if (v === null) { drawing = false; continue; }
        if (drawing) ctx.lineTo(x(p.t), y(v)); else ctx.moveTo(x(p.t), y(v));
        drawing = true;
      }
      ctx.stroke();
      const last = points[points.length - 1];
      if (last && pick(last) !== null) {   // the latest value as a dot (visible with a single point)
        ctx.fillStyle = color;
        ctx.beginPath(); ctx.arc(x(last.t), y(pick(last)), 3, 0, 2 * Math.PI); ctx.fill();
      }
    }
    line("#1459b3", (p) => p.waiting, yW);
    line("#2a7d46", (p) => p.sl, yS);
    if (!points.length) {
      ctx.textAlign = "center";
      ctx.fillStyle = "#8a96a3";
      ctx.fillText("no figures yet", pad.l + w / 2, pad.t + h / 2);
    }
  }

  // -- frames --------------------------------------------------------------------------------------
  function onFrame(msg) {
    if (msg.type === "wallboard") {
      const queues = Array.isArray(msg.queues) ? msg.queues : [];
      renderQueues(queues);
      renderAgents(Array.isArray(msg.agents) ? msg.agents : []);
      record(Array.isArray(msg.chart) ? msg.chart : []);
      setText("updated", new Date().toLocaleTimeString());
    } else if (msg.type === "error") {
      message(`server: ${msg.reason || "error"}`, "error");
    }
  }

  function onWelcome(msg) {
    setText("agent-name", msg.agent);
    $("not-supervisor").hidden = msg.role === "supervisor" || msg.role === "admin";
    message("");
  }

  function reset() {
    clear($("queues"));
    clear($("agents").tBodies[0]);
    agentRows = new Map();
    history.clear();
    drawChart();
  }

  const board = CC.session({
    onWelcome, onFrame,
    onLoggedOut: reset,
    onStatus: (text) => setText("conn", text),
  });

  $("btn-signout").addEventListener("click", () => board.signOut());
  $("chart-span").addEventListener("change", drawChart);
  window.addEventListener("resize", drawChart);
  setInterval(tickAgents, 1000);
  setInterval(drawChart, 15000);
})();
