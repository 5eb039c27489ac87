/* The patients' chat page: talks to the web app's own socket.io (bot/web/chat.py), which passes
 * the conversation through the patient gateway to Rasa; the page never reaches Rasa's port.
 *
 * Protocol (Rasa's socket.io events; the session id is issued and signed by the server):
 *   on every connect   emit session_request {session_id}  -> receive session_confirm <session_id>
 *   to send            emit user_uttered {message, session_id}   (only after session_confirm)
 *   receive            bot_uttered {text, quick_replies?: [{title, payload}]}
 *                      bot_uttered {custom: {triage: {level, findings, reasons, escalation_id}}}
 *
 * Safety rules of this file: every patient and bot text is inserted as text (textContent or text
 * nodes), never as HTML; the only links made are tel: links built from digits.
 */
"use strict";

(function () {
  const STORE_KEY = "hsg-aftercare-chat:v1";
  const KEEP_MS = 7 * 24 * 3600 * 1000;      // the browser's copy expires (health data on a shared device)
  const MAX_ITEMS = 300;                 // transcript entries kept on this device
  const REPLY_TIMEOUT_MS = 30000;        // no answer this long after sending: say whom to call
  const CONFIRM_FALLBACK_MS = 5000;      // a server that never confirms the session: send anyway

  const LEVELS = {
    emergency: { label: "Emergency", rank: 4 },
    urgent: { label: "Urgent", rank: 3 },
    routine: { label: "Routine", rank: 2 },
    self_care: { label: "Self-care", rank: 1 },
    info: { label: "Information", rank: 0 },
  };

  const $ = (id) => document.getElementById(id);
  const els = {
    banner: $("emergency-banner"),
    status: $("status"),
    startOver: $("start-over"),
    forget: $("forget"),
    log: $("log"),
    typing: $("typing"),
    form: $("composer"),
    input: $("message"),
    send: $("send"),
  };

  let config = null;
  let socket = null;
  let sessionReady = false;
  let confirmTimer = null;
  let replyTimer = null;
  let state = null;
  const rendered = new Map();            // item id -> its element in the log

  /* ---------- storage ---------- */

  function newSessionId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // crypto.randomUUID needs a secure context (https or localhost); plain http on a LAN does not
    // have it, but crypto.getRandomValues works everywhere: build the same UUID v4 from it.
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function freshState() {
    return { version: 1, sessionId: newSessionId(), nextId: 1, items: [], pending: [],
             awaitingReply: false, banner: { active: false } };
  }

  function loadState() {
    try {
      const raw = window.localStorage.getItem(STORE_KEY);
      if (raw) {
        const s = JSON.parse(raw);
        const fresh = typeof s.savedAt !== "number" || Date.now() - s.savedAt < KEEP_MS;
        if (!fresh) window.localStorage.removeItem(STORE_KEY);
        if (fresh && s && s.version === 1 && typeof s.sessionId === "string" && s.sessionId &&
            Array.isArray(s.items)) {
          s.items = s.items.filter((it) => it && typeof it === "object" && typeof it.id === "number");
          s.pending = Array.isArray(s.pending) ? s.pending.filter((p) => typeof p === "string") : [];
          s.banner = s.banner && typeof s.banner === "object" ? s.banner : { active: false };
          s.nextId = Math.max(Number(s.nextId) || 1, ...s.items.map((it) => it.id + 1), 1);
          s.awaitingReply = Boolean(s.awaitingReply);
          return s;
        }
      }
    } catch (e) {
      /* unreadable or blocked storage: start afresh */
    }
    return freshState();
  }

  function saveState() {
    if (state.items.length > MAX_ITEMS) state.items = state.items.slice(-MAX_ITEMS);
    try {
      state.savedAt = Date.now();
      window.localStorage.setItem(STORE_KEY, JSON.stringify(state));
    } catch (e) {
      /* storage full or blocked: the conversation still works, it just won't survive a reload */
    }
  }

  /* ---------- phone numbers -> tel: links ---------- */

  function telHref(number) {
    return "tel:" + String(number).replace(/[^0-9+]/g, "");
  }

  function telLink(number, label) {
    const a = document.createElement("a");
    a.href = telHref(number);
    a.textContent = label || number;
    return a;
  }

  function escapeRegExp(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  let phoneRegex = null;
  function getPhoneRegex() {
    if (phoneRegex) return phoneRegex;
    const c = (config && config.clinic) || {};
    // The clinic's own numbers exactly (the emergency number is short, e.g. 999), then anything
    // shaped like a UK or international phone number: 0 or + then 9 to 15 digits.
    const known = [c.phone, c.out_of_hours_phone, c.emergency_number]
      .filter((n) => typeof n === "string" && /\d/.test(n))
      .sort((a, b) => b.length - a.length)
      .map((n) => escapeRegExp(n.trim()).replace(/\s+/g, "[\\s\\u00a0-]?"));
    const generic = "(?:\\+|\\b0)[\\d\\s\\u00a0()-]{7,}\\d";
    phoneRegex = new RegExp([...known, generic].join("|"), "g");
    return phoneRegex;
  }

  /** The text as a fragment of text nodes and tel: links (no HTML is ever parsed). */
  function linkify(text) {
    const frag = document.createDocumentFragment();
    const re = getPhoneRegex();
    re.lastIndex = 0;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      const start = m.index;
      const found = m[0];
      const before = start > 0 ? text[start - 1] : "";
      const after = text[start + found.length] || "";
      const digits = found.replace(/\D/g, "").length;
      const phoneShaped = /^(?:\+|0)/.test(found) && digits >= 9 && digits <= 15;
      if (/[\w+\-.]/.test(before) || /\d/.test(after) || !(phoneShaped || knownNumber(found))) {
        re.lastIndex = start + 1;
        continue;
      }
      if (start > last) frag.appendChild(document.createTextNode(text.slice(last, start)));
      frag.appendChild(telLink(found));
      last = start + found.length;
    }
    if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  function knownNumber(found) {
    const c = (config && config.clinic) || {};
    const d = found.replace(/\D/g, "");
    return [c.phone, c.out_of_hours_phone, c.emergency_number]
      .some((n) => typeof n === "string" && n.replace(/\D/g, "") === d && d.length > 0);
  }

  /* ---------- rendering ---------- */

  function hidden(text) {
    const s = document.createElement("span");
    s.className = "visually-hidden";
    s.textContent = text;
    return s;
  }

  function renderItem(item) {
    const div = document.createElement("div");
    div.className = `msg ${item.who}`;
    div.dataset.id = String(item.id);
    if (item.text) {
      const p = document.createElement("p");
      p.className = "bubble";
      if (item.who === "user") {
        p.appendChild(hidden("You: "));
        p.appendChild(document.createTextNode(item.text));
      } else {
        p.appendChild(hidden(item.who === "bot" ? "Assistant: " : "Note: "));
        p.appendChild(linkify(item.text));
      }
      div.appendChild(p);
    }
    if (item.triage) div.appendChild(renderCard(item.triage));
    if (Array.isArray(item.quickReplies) && item.quickReplies.length) {
      div.appendChild(renderQuickReplies(item));
    }
    return div;
  }

  function renderQuickReplies(item) {
    const group = document.createElement("div");
    group.className = "quick-replies";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Suggested answers");
    for (const qr of item.quickReplies) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "quick-reply";
      b.textContent = qr.title;
      b.disabled = Boolean(item.repliesUsed);
      if (item.chosen === qr.payload) b.setAttribute("aria-pressed", "true");
      b.addEventListener("click", () => {
        if (item.repliesUsed) return;
        item.chosen = qr.payload;
        b.setAttribute("aria-pressed", "true");
        sendMessage(qr.payload, qr.title);
        els.input.focus();
      });
      group.appendChild(b);
    }
    return group;
  }

  function levelInfo(level) {
    return LEVELS[level] || { label: String(level || "Unknown"), rank: -1 };
  }

  function renderCard(triage) {
    const c = (config && config.clinic) || {};
    const level = typeof triage.level === "string" ? triage.level : "info";
    const info = levelInfo(level);
    const card = document.createElement("section");
    card.className = `card level-${LEVELS[level] ? level : "unknown"}`;
    card.dataset.level = level;
    card.setAttribute("aria-label", `Triage result: ${info.label}`);

    const head = document.createElement("p");
    head.className = "card-head";
    const badge = document.createElement("span");
    badge.className = "card-level";
    badge.textContent = info.label;
    head.appendChild(document.createTextNode("Triage level: "));
    head.appendChild(badge);
    card.appendChild(head);

    const action = document.createElement("p");
    action.className = "card-action";
    if (level === "emergency") {
      action.appendChild(telLink(c.emergency_number || "999", `Call ${c.emergency_number || "999"} now`));
      action.appendChild(document.createTextNode("."));
    } else if (level === "urgent") {
      action.appendChild(document.createTextNode("Contact the clinic now: "));
      if (c.phone) action.appendChild(telLink(c.phone));
      if (c.out_of_hours_phone) {
        action.appendChild(document.createTextNode(" (out of hours "));
        action.appendChild(telLink(c.out_of_hours_phone));
        action.appendChild(document.createTextNode(")"));
      }
      action.appendChild(document.createTextNode("."));
    } else if (level === "routine") {
      action.appendChild(document.createTextNode("Call the clinic in opening hours" +
        (c.hours ? ` (${c.hours})` : "") + ": "));
      if (c.phone) action.appendChild(telLink(c.phone));
      action.appendChild(document.createTextNode("."));
    } else if (level === "self_care") {
      action.textContent = "A common after-effect that usually settles on its own.";
    } else {
      action.textContent = "No warning sign to act on in this message.";
    }
    card.appendChild(action);

    // The findings that set this level (as the bot's text names them); if none, all that count.
    const findings = (Array.isArray(triage.findings) ? triage.findings : []).filter((f) =>
      f && typeof f === "object" && f.counts !== false && !f.negated && !f.hypothetical &&
      !f.other_experiencer && f.level !== "info" && typeof f.name === "string");
    const top = findings.filter((f) => f.level === level);
    const names = [];
    for (const f of top.length ? top : findings) {
      if (!names.includes(f.name)) names.push(f.name);
    }
    if (names.length) {
      const p = document.createElement("p");
      p.className = "card-findings";
      p.textContent = "What I noted: " + names.join("; ") + ".";
      card.appendChild(p);
    }

    if (triage.escalation_id) {
      const p = document.createElement("p");
      p.className = "card-escalation";
      p.textContent = `The clinic's nurses have been alerted (reference ${String(triage.escalation_id)}).`;
      card.appendChild(p);
    }

    const reasons = Array.isArray(triage.reasons) ? triage.reasons.filter((r) => typeof r === "string") : [];
    if (reasons.length) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "Why this level";
      details.appendChild(summary);
      const ul = document.createElement("ul");
      for (const r of reasons) {
        const li = document.createElement("li");
        li.textContent = r;
        ul.appendChild(li);
      }
      details.appendChild(ul);
      card.appendChild(details);
    }
    return card;
  }

  function scrollToEnd() {
    els.log.scrollTop = els.log.scrollHeight;
  }

  function renderAll() {
    for (const el of rendered.values()) el.remove();
    rendered.clear();
    for (const item of state.items) {
      const el = renderItem(item);
      rendered.set(item.id, el);
      els.log.appendChild(el);
    }
    renderBanner(false);
    setTyping(state.awaitingReply);
    scrollToEnd();
  }

  function addItem(item) {
    item.id = state.nextId++;
    state.items.push(item);
    saveState();
    const el = renderItem(item);
    rendered.set(item.id, el);
    els.log.appendChild(el);
    scrollToEnd();
    return item;
  }

  /* ---------- emergency banner ---------- */

  function renderBanner() {
    const b = els.banner;
    b.replaceChildren();
    b.classList.toggle("active", Boolean(state.banner.active));
    if (!state.banner.active) return;
    const c = (config && config.clinic) || {};
    const number = c.emergency_number || "999";
    const inner = document.createElement("div");
    inner.className = "banner-inner";
    const text = document.createElement("p");
    text.className = "banner-text";
    const call = telLink(number, `Call ${number} now`);
    call.className = "banner-call";
    text.appendChild(call);
    text.appendChild(document.createTextNode(
      " What you describe needs help straight away. If you can't call, ask someone near you to call."));
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "banner-dismiss";
    dismiss.textContent = "Dismiss";
    dismiss.setAttribute("aria-label", "Dismiss the emergency message");
    dismiss.addEventListener("click", () => {
      state.banner.active = false;
      saveState();
      renderBanner();
      els.input.focus();
    });
    inner.appendChild(text);
    inner.appendChild(dismiss);
    b.appendChild(inner);
  }

  /* ---------- typing indicator and status ---------- */

  function setTyping(on) {
    els.typing.hidden = !on;
    clearTimeout(replyTimer);
    if (on) replyTimer = setTimeout(noReply, REPLY_TIMEOUT_MS);
  }

  function noReply() {
    if (!state.awaitingReply) return;
    state.awaitingReply = false;
    setTyping(false);
    const c = (config && config.clinic) || {};
    addItem({ who: "system", text:
      `No answer yet${socket && socket.connected ? "" : " (the connection is down)"}. ` +
      `If you feel unwell, call the clinic on ${c.phone} (out of hours ${c.out_of_hours_phone}). ` +
      `In an emergency call ${c.emergency_number}.` });
  }

  let statusText = "";
  function setStatus(kind) {
    const words = {
      connecting: "Connecting…",
      connected: "Connected",
      reconnecting: "Reconnecting…",
      failed: "Can't load the chat. Please reload the page.",
    };
    let text = words[kind] || kind;
    if (kind !== "connected" && state && state.pending.length) {
      text += " Your message will be sent when connected.";
    }
    els.status.dataset.state = kind;
    if (text !== statusText) {
      statusText = text;
      els.status.textContent = text;
    }
  }

  /* ---------- sending and receiving ---------- */

  function disableQuickReplies() {
    let changed = false;
    for (const item of state.items) {
      if (Array.isArray(item.quickReplies) && item.quickReplies.length && !item.repliesUsed) {
        item.repliesUsed = true;
        changed = true;
        const el = rendered.get(item.id);
        if (el) el.querySelectorAll("button.quick-reply").forEach((b) => { b.disabled = true; });
      }
    }
    return changed;
  }

  function sendMessage(message, shown) {
    const text = String(message).trim();
    if (!text) return;
    disableQuickReplies();
    addItem({ who: "user", text: shown || text });
    state.pending.push(text);
    state.awaitingReply = true;
    saveState();
    setTyping(true);
    flush();
  }

  function flush() {
    if (!socket || !socket.connected || !sessionReady) {
      setStatus(socket && socket.connected ? "connecting" : (statusKindBeforeConnect()));
      return;
    }
    while (state.pending.length) {
      const message = state.pending.shift();
      socket.emit("user_uttered", { message, session_id: state.sessionId });
    }
    saveState();
  }

  let everConnected = false;
  function statusKindBeforeConnect() {
    return everConnected ? "reconnecting" : "connecting";
  }

  function normaliseQuickReplies(list) {
    if (!Array.isArray(list)) return [];
    return list
      .filter((q) => q && typeof q === "object" && (typeof q.payload === "string" || typeof q.title === "string"))
      .map((q) => ({ title: String(q.title != null ? q.title : q.payload),
                     payload: String(q.payload != null ? q.payload : q.title) }));
  }

  function onBotUttered(data) {
    if (!data || typeof data !== "object") return;
    if (state.awaitingReply) {
      state.awaitingReply = false;
      setTyping(false);
    }
    const text = typeof data.text === "string" ? data.text : "";
    const quickReplies = normaliseQuickReplies(data.quick_replies || data.buttons);
    if (text.trim() || quickReplies.length) {
      addItem({ who: "bot", text, quickReplies });
    }
    const triage = data.custom && typeof data.custom === "object" ? data.custom.triage : null;
    if (triage && typeof triage === "object") attachTriage(triage);
    saveState();
  }

  /** The triage card goes on the bot text just before it (Rasa sends the text, then the payload). */
  function attachTriage(triage) {
    let target = null;
    for (let i = state.items.length - 1; i >= 0; i--) {
      const it = state.items[i];
      if (it.who === "user") break;
      if (it.who === "bot") { target = it; break; }
    }
    if (!target || target.triage) {
      target = addItem({ who: "bot", text: "", quickReplies: [], triage });
    } else {
      target.triage = triage;
      const el = rendered.get(target.id);
      if (el) {
        const card = renderCard(triage);
        const qr = el.querySelector(".quick-replies");
        el.insertBefore(card, qr);     // appended content: read out once by the live log
      }
    }
    if (triage.level === "emergency") {
      state.banner.active = true;
      renderBanner();
    }
    saveState();
    scrollToEnd();
  }

  function connect() {
    if (typeof window.io !== "function") {
      setStatus("failed");
      return;
    }
    // the web app itself (config.rasa_url is empty): patients never reach Rasa's port
    socket = window.io(config.rasa_url || undefined, {
      path: config.socketio_path || "/socket.io",
      transports: ["websocket", "polling"],
    });
    socket.on("connect", () => {
      everConnected = true;
      sessionReady = false;
      setStatus("connecting");
      socket.emit("session_request", { session_id: state.sessionId });
      clearTimeout(confirmTimer);
      confirmTimer = setTimeout(() => {
        if (socket.connected && !sessionReady) onSessionConfirm(state.sessionId);
      }, CONFIRM_FALLBACK_MS);
    });
    socket.on("session_confirm", onSessionConfirm);
    socket.on("bot_uttered", onBotUttered);
    socket.on("disconnect", (reason) => {
      sessionReady = false;
      setStatus("reconnecting");
      // The server closed the connection on purpose: socket.io does not retry on its own.
      if (reason === "io server disconnect") socket.connect();
    });
    socket.on("connect_error", () => setStatus(statusKindBeforeConnect()));
    socket.io.on("reconnect_attempt", () => setStatus("reconnecting"));
  }

  function onSessionConfirm(sessionId) {
    // the server issues (and signs) the session id; keep the one it confirmed
    if (typeof sessionId === "string" && sessionId && sessionId !== state.sessionId) {
      state.sessionId = sessionId;
      saveState();
    }
    clearTimeout(confirmTimer);
    sessionReady = true;
    setStatus("connected");
    flush();
  }

  function startOver() {
    if (!window.confirm("Start a new conversation? This clears this conversation from this device.")) return;
    state = freshState();
    saveState();
    renderAll();
    setTyping(false);
    // A new socket.io connection, so that this browser leaves the old session's room on Rasa.
    if (socket) {
      sessionReady = false;
      socket.disconnect();
      socket.connect();
    }
    els.input.value = "";
    els.input.focus();
  }

  function forgetConversation() {
    if (!window.confirm("Delete this conversation from the clinic's assistant and from this device?")) return;
    const clearHere = (texts) => {
      window.localStorage.removeItem(STORE_KEY);
      state = freshState();
      renderAll();
      setTyping(false);
      (texts || []).forEach((t) => addItem({ who: "system", text: String(t) }));
      if (socket) {
        sessionReady = false;
        socket.disconnect();
        socket.connect();
      }
    };
    if (socket && socket.connected && sessionReady) {
      socket.once("forgotten", (data) => clearHere(data && Array.isArray(data.texts) ? data.texts : []));
      socket.emit("forget", {});
    } else {
      clearHere(["This device's copy is deleted. I could not reach the clinic's assistant just now: " +
                 "press the button again when connected to delete the stored conversation too."]);
    }
  }

  /* ---------- start ---------- */

  function wireForm() {
    els.form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = els.input.value;
      if (!text.trim()) { els.input.focus(); return; }
      sendMessage(text);
      els.input.value = "";
      els.input.focus();
    });
    els.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
        e.preventDefault();
        els.form.requestSubmit();
      }
    });
    els.startOver.addEventListener("click", startOver);
    els.forget.addEventListener("click", forgetConversation);
  }

  async function main() {
    state = loadState();
    setStatus("connecting");
    wireForm();
    try {
      const r = await fetch("/config.json", { cache: "no-store", credentials: "same-origin" });
      if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
      config = await r.json();
    } catch (e) {
      setStatus("failed");
      return;
    }
    renderAll();
    connect();
  }

  main();
})();
