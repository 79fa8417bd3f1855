// Parley's chat page: a client of the gateway's /ws socket and REST API, like any other
// (docs/protocol.md). No framework and no build step: the gateway serves this file as is.
//
// What it keeps: the token (or, without authentication, the user name) and the open
// session in localStorage, so that a reload comes back to the same conversation; the
// messages of the open session, each by its stored id once it has one. On every
// (re)connect it sends `resume` from the last stored id it has, so nothing that was
// answered while it was away is missing, and nothing it has is shown twice.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const storage = {
    get: (key) => { try { return localStorage.getItem("parley." + key); } catch { return null; } },
    set: (key, value) => {
      try {
        if (value === null || value === undefined) localStorage.removeItem("parley." + key);
        else localStorage.setItem("parley." + key, value);
      } catch { /* private mode: the page still works, it forgets on reload */ }
    },
  };

  // Every error code of docs/protocol.md in plain words; anything else shows its message.
  const PLAIN_WORDS = {
    malformed_frame: "The page sent something the server could not read. Reload the page.",
    malformed_request: "The request was not valid.",
    empty_content: "Write something first.",
    invalid_content: "The message contains a character that cannot be stored.",
    content_too_long: "That message is too long. Shorten it and send it again.",
    rate_limited: "You are sending too fast. Wait a moment and try again.",
    too_many_sockets: "Too many windows are open for your user. Close one and reload.",
    too_many_sessions: "This window has too many sessions open. Reload the page.",
    too_many_pending: "Several messages are already waiting. Wait for the answers first.",
    missed_replies: "Some answers were missed; loading them again.",
    session_not_found: "That session does not exist any more.",
    session_not_open: "The session was not open on this connection. Reload the page.",
    session_completed: "This session is finished: the topic was completed. Start a new one to go on.",
    session_busy: "The previous message is still being answered. Send this one again in a moment.",
    topic_not_found: "That topic does not exist.",
    course_not_found: "That course does not exist for you.",
    platform_unavailable: "The learning platform is not answering. Try again in a moment.",
    forbidden: "That session belongs to another user.",
    turn_not_found: "There is no answer in progress to stop.",
    cancelled: "The message was cancelled before it was answered.",
    overloaded: "Parley is busy right now; your message was not sent. Try again shortly.",
    unavailable: "Parley cannot take messages right now; your message was not sent. Try again shortly.",
    unconfirmed: "Your message may or may not have been received. Wait a moment before sending it again.",
    expired: "Your message waited too long and was not answered. Send it again.",
    reply_timeout: "No answer arrived in time. It may still come; reload the session in a while.",
    llm_unavailable: "The tutor is not answering right now. Nothing was saved; send your message again.",
    llm_rate_limited: "The tutor is overloaded. Send your message again in a minute.",
    llm_quota_exceeded: "The tutor has run out of quota. Tell the people who run Parley.",
    llm_rejected: "The tutor refused the request. Tell the people who run Parley.",
    llm_blocked: "The tutor's safety filters blocked this message or its answer.",
    llm_bad_response: "The tutor sent an answer that could not be read. Send your message again.",
    missing_token: "Sign in first.",
    invalid_token: "That token is not valid here.",
    token_expired: "Your sign-in has expired. Sign in again.",
    origin_not_allowed: "This gateway does not accept this page's address (ALLOWED_ORIGINS).",
    accounts_disabled: "This Parley has no accounts; sign in with a token.",
    invalid_credentials: "The user name or the password is wrong.",
    account_exists: "That user name is taken. Choose another.",
    weak_password: "The password is too short: use at least 8 characters.",
  };
  const SIGN_IN_CODES = new Set(["missing_token", "invalid_token", "token_expired"]);
  // Refusals of the socket itself that another try would meet again.
  const STOP_CODES = new Set(["origin_not_allowed", "malformed_request"]);
  const plainWords = (code, message) => PLAIN_WORDS[code] || message || "Something went wrong.";

  const state = {
    authentication: "token", // or "off"
    token: storage.get("token"),
    user: storage.get("user") || new URLSearchParams(location.search).get("user") || "local",
    sessionID: storage.get("session"),
    sessions: new Map(), // id -> summary
    sessionsCursor: null,
    topics: [],
    messages: [], // {key, id?, role, content, turnID?, clientMsgID?, state?, note?}
    lastID: 0, // highest stored message id of the open session
    completed: false,
    inFlight: null, // turn id of the answer in progress
    waitingFirst: null, // text to send once the session being started exists
    startRequest: null,
    socket: null,
    socketSessions: new Set(), // sessions this socket has opened (the gateway allows 16)
    attempt: 0,
    reconnectTimer: null,
    steadyTimer: null,
    retryAfter: 0, // seconds the gateway asked to wait before the next socket
    signedIn: false,
    counter: 0,
  };

  // ---- REST ----------------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    let url = path;
    if (state.authentication === "off") {
      url += (path.includes("?") ? "&" : "?") + "user=" + encodeURIComponent(state.user);
    } else if (state.token) {
      headers["Authorization"] = "Bearer " + state.token;
    }
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw { code: "unavailable", message: "the gateway cannot be reached" };
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw (data && data.error) || { code: "unavailable", message: "HTTP " + response.status };
    return data;
  }

  // ---- Sign-in -------------------------------------------------------------------

  async function boot() {
    bindControls();
    try {
      const options = await api("GET", "/api/auth");
      state.authentication = options.authentication;
      $("login-form").hidden = !options.accounts;
      $("register-form").hidden = !options.accounts;
    } catch (error) {
      showSignIn(plainWords(error.code, error.message));
      return;
    }
    if (state.authentication === "off" || state.token) {
      await enter();
    } else {
      showSignIn("");
    }
  }

  function showSignIn(message) {
    state.signedIn = false;
    closeSocket();
    $("app").hidden = true;
    $("sign-out").hidden = true;
    $("who").textContent = "";
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message;
    setConnection("offline", "Not signed in");
    const first = $("login-form").hidden ? $("token-input") : $("login-user");
    first.focus();
  }

  // Checks the token by reading the sessions, then opens the chat.
  async function enter() {
    try {
      await loadSessions(true);
    } catch (error) {
      if (SIGN_IN_CODES.has(error.code)) {
        signOut(plainWords(error.code, error.message));
        return;
      }
      // The gateway may be restarting: open the chat anyway, the socket retries.
      $("chat-error").textContent = plainWords(error.code, error.message);
    }
    state.signedIn = true;
    $("sign-in").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = state.authentication === "off";
    $("who").textContent = "Signed in as " + displayUser();
    loadTopics();
    if (state.sessionID) openSession(state.sessionID);
    else render();
    connect();
  }

  function displayUser() {
    if (state.authentication === "off") return state.user;
    const parts = (state.token || "").split(".");
    if (parts.length === 3) {
      try {
        const claims = JSON.parse(atob(parts[1].replace(/-/g, "+").replace(/_/g, "/")));
        // An account's user id is `account:<name>`: the person knows the name.
        if (typeof claims.sub === "string") return claims.sub.replace(/^account:/, "");
      } catch { /* not a JWT we can read: an API key */ }
    }
    return "your API key's user";
  }

  async function signInWith(path, user, password) {
    $("sign-in-error").textContent = "";
    try {
      const issued = await api("POST", path, { user_id: user, password });
      state.token = issued.token;
      storage.set("token", issued.token);
      await enter();
    } catch (error) {
      $("sign-in-error").textContent = plainWords(error.code, error.message);
    }
  }

  function signOut(message) {
    state.token = null;
    state.sessionID = null;
    storage.set("token", null);
    storage.set("session", null);
    state.sessions.clear();
    resetConversation();
    showSignIn(message || "");
  }

  // ---- Lists ---------------------------------------------------------------------

  async function loadSessions(fromTop) {
    const cursor = fromTop ? "" : "&cursor=" + encodeURIComponent(state.sessionsCursor || "");
    const page = await api("GET", "/api/sessions?limit=30" + cursor);
    if (fromTop) state.sessions.clear();
    for (const session of page.sessions) state.sessions.set(session.session_id, session);
    state.sessionsCursor = page.next_cursor;
    renderSessions();
  }

  async function loadTopics() {
    try {
      state.topics = (await api("GET", "/api/topics")).topics;
    } catch {
      state.topics = [];
    }
    const select = $("topic-select");
    select.replaceChildren();
    for (const topic of state.topics) {
      const option = document.createElement("option");
      option.value = String(topic.topic_id);
      option.textContent = (topic.course_title ? topic.course_title + ": " : "") + topic.title;
      select.append(option);
    }
    // Topics of a learning platform are not listed here: the learner names one by id.
    select.hidden = state.topics.length === 0;
    $("topic-id").hidden = state.topics.length > 0;
    $("topic-label").setAttribute("for", state.topics.length ? "topic-select" : "topic-id");
  }

  function sessionTitle(session) {
    if (session.topic_title) return session.topic_title;
    if (session.first_message) return session.first_message;
    return "New chat";
  }

  function renderSessions() {
    const list = $("sessions");
    list.replaceChildren();
    const sorted = [...state.sessions.values()].sort((a, b) => (a.started_at < b.started_at ? 1 : -1));
    for (const session of sorted) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "session-button";
      button.dataset.session = session.session_id;
      if (session.session_id === state.sessionID) button.setAttribute("aria-current", "true");
      const title = document.createElement("span");
      title.className = "title";
      title.textContent = sessionTitle(session);
      const meta = document.createElement("span");
      meta.className = "meta";
      const when = new Date(session.last_activity_at || session.started_at);
      meta.textContent = (session.status === "completed" ? "Completed · " : session.topic_id ? "Training · " : "") + when.toLocaleString();
      button.append(title, meta);
      button.addEventListener("click", () => openSession(session.session_id, true));
      item.append(button);
      list.append(item);
    }
    $("more-sessions").hidden = !state.sessionsCursor;
  }

  // ---- The open session ----------------------------------------------------------

  function resetConversation() {
    state.messages = [];
    state.lastID = 0;
    state.completed = false;
    state.inFlight = null;
  }

  // `focus`: when the person picked the session, the chat's title takes the focus (a
  // screen reader says where they are); a session the page opened itself leaves the
  // focus in the message box.
  function openSession(id, focus) {
    state.sessionID = id;
    storage.set("session", id);
    resetConversation();
    $("chat-error").textContent = "";
    render();
    renderSessions();
    if (!state.socketSessions.has(id) && state.socketSessions.size >= 12 && isOpen()) {
      // A socket may use 16 sessions; a page that has visited many starts a new socket,
      // which resumes this session when it opens.
      closeSocket();
      connect();
    } else {
      resume(0);
    }
    if (focus) $("chat-title").focus();
  }

  function resume(afterID) {
    if (!state.sessionID) return;
    if (send({ type: "resume", session_id: state.sessionID, after_id: afterID })) state.socketSessions.add(state.sessionID);
  }

  // Stored messages (of `history` or a `reply`) go in by id, so a message seen twice is
  // kept once; the page's own unsent or unanswered messages stay after them.
  function putStored(message, fields) {
    if (message.role === "system") return;
    let entry = state.messages.find((m) => m.id === message.id);
    if (!entry && message.role === "user") {
      entry = state.messages.find((m) => m.id === undefined && m.role === "user" && m.content === message.content);
    }
    if (!entry && fields && fields.turnID) {
      entry = state.messages.find((m) => m.role === "assistant" && m.turnID === fields.turnID);
    }
    if (!entry) {
      entry = { key: "m" + message.id, role: message.role };
      state.messages.push(entry);
    }
    Object.assign(entry, { id: message.id, content: message.content, state: "stored", note: "" }, fields || {});
    state.lastID = Math.max(state.lastID, message.id);
  }

  function sortMessages() {
    // A message the page sent has no stored id until its answer arrives: it sorts just
    // before the answer of its turn, at the end while it waits (the session answers in
    // order, so what is stored meanwhile came before it), and where it failed once it
    // failed (it will never be stored).
    const answers = new Map();
    for (const m of state.messages) if (m.role === "assistant" && m.turnID && m.id !== undefined) answers.set(m.turnID, m.id);
    const sortKey = (m) => {
      if (m.id !== undefined) return m.id;
      if (m.role === "user" && answers.has(m.turnID)) return answers.get(m.turnID) - 0.5;
      if (m.state === "failed") return m.failedAfter + 0.75;
      return Number.MAX_SAFE_INTEGER;
    };
    const order = new Map(state.messages.map((m, index) => [m, index]));
    state.messages.sort((a, b) => sortKey(a) - sortKey(b) || order.get(a) - order.get(b));
  }

  function render() {
    sortMessages();
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const existing = new Map([...list.children].map((node) => [node.dataset.key, node]));
    const wanted = [];
    for (const message of state.messages) {
      let node = existing.get(message.key);
      if (!node) {
        node = document.createElement("li");
        node.dataset.key = message.key;
        const speaker = document.createElement("span");
        speaker.className = "speaker";
        const text = document.createElement("span");
        text.className = "text";
        const note = document.createElement("span");
        note.className = "note";
        node.append(speaker, text, note);
      }
      node.className = "message";
      node.dataset.role = message.role;
      node.dataset.state = message.state || "stored";
      if (message.id !== undefined) node.dataset.id = String(message.id);
      node.querySelector(".speaker").textContent = message.role === "user" ? "You" : "Tutor";
      node.querySelector(".text").textContent = message.content;
      const note = node.querySelector(".note");
      note.textContent = message.note || "";
      note.hidden = !message.note;
      wanted.push(node);
    }
    // Move only what is out of place: a node taken out and put back is new to a screen
    // reader, which would read the whole conversation again on every delta.
    wanted.forEach((node, index) => {
      if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
    });
    while (list.children.length > wanted.length) list.lastElementChild.remove();
    if (atBottom || wanted.length < 3) list.scrollTop = list.scrollHeight;

    const session = state.sessions.get(state.sessionID);
    $("chat-title").textContent = state.sessionID ? (session ? sessionTitle(session) : "Chat") : "Start a chat or pick a session";
    $("completed-banner").hidden = !state.completed;
    const connected = isOpen();
    $("composer-input").disabled = state.completed;
    $("send").disabled = state.completed || !connected || state.startRequest !== null;
    $("stop").hidden = !state.inFlight;
  }

  // ---- The socket ----------------------------------------------------------------

  function isOpen() {
    return state.socket !== null && state.socket.readyState === WebSocket.OPEN;
  }

  function send(frame) {
    if (!isOpen()) return false;
    state.socket.send(JSON.stringify(frame));
    return true;
  }

  function socketURL() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = state.authentication === "off" ? "user=" + encodeURIComponent(state.user) : "token=" + encodeURIComponent(state.token || "");
    return scheme + "//" + location.host + "/ws?" + query;
  }

  function setConnection(kind, text) {
    const status = $("connection");
    status.dataset.state = kind;
    status.textContent = text;
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (!state.signedIn) return;
    setConnection("connecting", state.attempt ? "Reconnecting…" : "Connecting…");
    const socket = new WebSocket(socketURL());
    state.socket = socket;
    state.socketSessions = new Set();
    let refusal = null;
    socket.addEventListener("open", () => {
      setConnection("online", "Connected");
      // A refused socket opens too, then gets an error and a close: the backoff starts
      // over only once a socket has stayed open.
      state.steadyTimer = setTimeout(() => { state.attempt = 0; }, 5000);
      // An answer that was streaming went on without the page: its stored text comes
      // with the history below, or its deltas start again if it is still being written.
      state.messages = state.messages.filter((m) => !(m.state === "streaming" && m.id === undefined));
      state.inFlight = null;
      // Everything stored after what the page has, then the session's live frames.
      resume(state.lastID);
      render();
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame.type === "error" && (SIGN_IN_CODES.has(frame.code) || STOP_CODES.has(frame.code))) refusal = frame;
      if (frame.type === "error" && frame.retry_after) state.retryAfter = frame.retry_after;
      handle(frame);
    });
    socket.addEventListener("close", (event) => {
      clearTimeout(state.steadyTimer);
      if (state.socket !== socket) return;
      state.socket = null;
      // An answer in progress keeps going on the server; it arrives on resume. A message
      // Parley had not yet taken (no `accepted`) went with the connection: say so.
      for (const message of state.messages) {
        if (message.role === "user" && message.state === "sending") {
          message.state = "failed";
          message.failedAfter = state.lastID;
          message.note = "Not sent: the connection was lost before Parley took it. Send it again.";
        }
      }
      render();
      const code = refusal ? refusal.code : event.reason;
      if (SIGN_IN_CODES.has(code)) {
        if (state.authentication !== "off") signOut(plainWords(code, ""));
        return;
      }
      if (STOP_CODES.has(code) || (event.code === 1008 && !refusal)) {
        // Trying again would be refused the same way.
        setConnection("offline", "Not connected: " + plainWords(code, "the gateway refused the connection"));
        return;
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (!state.signedIn || state.reconnectTimer) return;
    // 0.5 s, 1 s, 2 s … up to 15 s, each with jitter, so that a restarted gateway is not
    // met by every page at the same instant.
    const backoff = Math.min(15000, 500 * 2 ** state.attempt) * (0.5 + Math.random() / 2);
    const delay = Math.max(backoff, state.retryAfter * 1000);
    state.retryAfter = 0;
    state.attempt += 1;
    setConnection("offline", "Connection lost. Reconnecting in " + Math.max(1, Math.round(delay / 1000)) + " s…");
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function closeSocket() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    const socket = state.socket;
    state.socket = null;
    if (socket) socket.close(1000, "signed out");
  }

  // ---- Frames from the gateway ---------------------------------------------------

  function handle(frame) {
    switch (frame.type) {
      case "session": return onSession(frame);
      case "accepted": return onAccepted(frame);
      case "delta": return onDelta(frame);
      case "reset": return onReset(frame);
      case "reply": return onReply(frame);
      case "history": return onHistory(frame);
      case "error": return onError(frame);
      default: return undefined;
    }
  }

  function onSession(frame) {
    if (frame.request_id !== state.startRequest) return;
    state.startRequest = null;
    const summary = {
      session_id: frame.session_id,
      status: frame.status,
      topic_id: state.pendingTopic || null,
      topic_title: state.pendingTopicTitle || null,
      first_message: state.waitingFirst,
      started_at: new Date().toISOString(),
      last_activity_at: new Date().toISOString(),
    };
    state.sessions.set(frame.session_id, summary);
    state.pendingTopic = null;
    state.pendingTopicTitle = null;
    const first = state.waitingFirst;
    state.waitingFirst = null;
    openSession(frame.session_id);
    if (first) sendMessage(first);
  }

  function onAccepted(frame) {
    if (frame.session_id !== state.sessionID) return;
    const mine = state.messages.find((m) => m.clientMsgID === frame.client_msg_id && m.role === "user");
    if (mine) {
      mine.turnID = frame.turn_id;
      mine.state = "sent";
      mine.note = "";
    }
    state.inFlight = frame.turn_id;
    render();
  }

  function streamingAnswer(turnID) {
    let answer = state.messages.find((m) => m.role === "assistant" && m.turnID === turnID);
    if (!answer) {
      answer = { key: "t" + turnID, role: "assistant", turnID, content: "", state: "streaming", nextIndex: 0 };
      state.messages.push(answer);
    }
    return answer;
  }

  function onDelta(frame) {
    if (frame.session_id !== state.sessionID) return;
    const answer = streamingAnswer(frame.turn_id);
    if (answer.state !== "streaming" || frame.index < answer.nextIndex) return;
    answer.content += frame.text;
    answer.nextIndex = frame.index + 1;
    if (!state.inFlight) state.inFlight = frame.turn_id;
    render();
  }

  function onReset(frame) {
    if (frame.session_id !== state.sessionID) return;
    const answer = streamingAnswer(frame.turn_id);
    if (answer.state !== "streaming") return;
    answer.content = "";
    answer.nextIndex = 0;
    render();
  }

  function onReply(frame) {
    const summary = state.sessions.get(frame.session_id);
    if (summary) {
      summary.last_activity_at = frame.message.timestamp;
      if (frame.completed) summary.status = "completed";
    }
    if (frame.session_id !== state.sessionID) {
      renderSessions();
      return;
    }
    // Whether the page has the question of this answer (its own message, or stored).
    const known = state.messages.some((m) => (m.role === "user" && m.turnID === frame.turn_id) || m.id === frame.message.id);
    const before = state.lastID;
    putStored(frame.message, {
      turnID: frame.turn_id,
      note: frame.cancelled ? "Stopped: this is what was written before you pressed Stop." : "",
    });
    if (state.inFlight === frame.turn_id) state.inFlight = null;
    if (frame.completed) state.completed = true;
    // An answer to a message this page did not see being sent (another window, or
    // sent before a reload): read the stored turn so that the question shows too.
    if (!known && frame.message.role === "assistant" && before > 0) resume(before);
    render();
    renderSessions();
  }

  function onHistory(frame) {
    if (frame.session_id !== state.sessionID) return;
    for (const message of frame.messages) putStored(message);
    if (frame.status === "completed") state.completed = true;
    const summary = state.sessions.get(frame.session_id);
    if (summary) summary.status = frame.status;
    if (frame.more) resume(state.lastID);
    render();
  }

  function onError(frame) {
    const words = plainWords(frame.code, frame.message);
    if (frame.request_id && frame.request_id === state.startRequest) {
      state.startRequest = null;
      state.waitingFirst = null;
    }
    const mine = frame.client_msg_id && state.messages.find((m) => m.clientMsgID === frame.client_msg_id && m.role === "user");
    if (mine) {
      // After `accepted` the message reached Parley and its answer failed; before, it
      // never got in.
      mine.note = (mine.state === "sent" ? "Not answered: " : "Not sent: ") + words;
      mine.state = "failed";
      mine.failedAfter = state.lastID;
    }
    if (frame.turn_id && state.inFlight === frame.turn_id) state.inFlight = null;
    if (frame.code === "session_completed" && frame.session_id === state.sessionID) state.completed = true;
    if (frame.code === "missed_replies") resume(state.lastID);
    if (frame.code === "session_not_found" && frame.session_id === state.sessionID) {
      state.sessions.delete(state.sessionID);
      state.sessionID = null;
      storage.set("session", null);
      resetConversation();
      renderSessions();
    }
    if (!mine && frame.code !== "missed_replies") $("chat-error").textContent = words;
    render();
  }

  // ---- What the person does ------------------------------------------------------

  function startSession(topicID, title, firstMessage) {
    state.counter += 1;
    state.startRequest = "start-" + state.counter + "-" + Math.random().toString(36).slice(2, 8);
    state.pendingTopic = topicID || null;
    state.pendingTopicTitle = title || null;
    state.waitingFirst = firstMessage || null;
    const frame = { type: "start", request_id: state.startRequest };
    if (topicID) {
      frame.topic_id = topicID;
      const topic = state.topics.find((t) => t.topic_id === topicID);
      if (topic && topic.course_id) frame.course_id = topic.course_id;
    }
    if (!send(frame)) {
      state.startRequest = null;
      $("chat-error").textContent = "Not connected: wait for the connection to come back.";
    }
  }

  function sendMessage(text) {
    state.counter += 1;
    const clientMsgID = "c" + state.counter + "-" + Math.random().toString(36).slice(2, 10);
    const sent = send({ type: "message", session_id: state.sessionID, content: text, client_msg_id: clientMsgID });
    if (!sent) return false;
    state.messages.push({ key: clientMsgID, role: "user", content: text, clientMsgID, state: "sending" });
    render();
    return true;
  }

  function submitComposer(event) {
    event.preventDefault();
    const input = $("composer-input");
    const text = input.value.trim();
    if (!text || state.completed) return;
    $("chat-error").textContent = "";
    if (!isOpen()) {
      $("chat-error").textContent = "Not connected: your message was not sent. It is still in the box.";
      return;
    }
    if (state.startRequest) return; // the session being started takes this once it exists
    if (!state.sessionID) {
      startSession(null, null, text);
    } else if (!sendMessage(text)) {
      return;
    }
    input.value = "";
    input.focus();
  }

  function bindControls() {
    $("composer").addEventListener("submit", submitComposer);
    $("composer-input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submitComposer(event);
    });
    $("stop").addEventListener("click", () => {
      if (state.inFlight) send({ type: "cancel", turn_id: state.inFlight, session_id: state.sessionID });
    });
    $("new-chat").addEventListener("click", () => {
      state.sessionID = null;
      storage.set("session", null);
      resetConversation();
      $("chat-error").textContent = "";
      render();
      renderSessions();
      $("composer-input").focus();
    });
    $("topic-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const raw = state.topics.length ? $("topic-select").value : $("topic-id").value;
      const topicID = Number.parseInt(raw, 10);
      if (!Number.isSafeInteger(topicID) || topicID <= 0) {
        $("chat-error").textContent = "Pick a topic (or type its number) first.";
        return;
      }
      const topic = state.topics.find((t) => t.topic_id === topicID);
      startSession(topicID, topic ? topic.title : "Topic " + topicID, null);
    });
    $("more-sessions").addEventListener("click", () => loadSessions(false).catch(() => {}));
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      signInWith("/api/accounts/login", $("login-user").value, $("login-password").value);
    });
    $("register-form").addEventListener("submit", (event) => {
      event.preventDefault();
      signInWith("/api/accounts", $("register-user").value, $("register-password").value);
    });
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      state.token = $("token-input").value.trim();
      storage.set("token", state.token);
      $("token-input").value = "";
      enter();
    });
    $("sign-out").addEventListener("click", () => signOut(""));
    window.addEventListener("online", () => { if (!state.socket && state.signedIn) connect(); });
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
