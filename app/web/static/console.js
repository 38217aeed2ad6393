"use strict";
// The callguard console. The person's bearer token lives in this tab's sessionStorage
// (never in a URL or a cookie, so no other site can act with it); every state shown comes
// from the people's API, polled, so a reload or a second screen shows the same truth.

const TOKEN_KEY = "callguard.token";
const POLL_MS = 2000;
const REASONS = JSON.parse(document.getElementById("reason-text").textContent);
const $ = (id) => document.getElementById(id);

let me = null; // {name, role}
let departments = []; // from the active policy
let timer = null;
const cards = new Map(); // call_sid -> {element, call, busy, pauseFailed, eventsOpen, adviceFor}
let dialogCard = null;

class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `callguard answered ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) {
    signOut("Your token was refused (it may have been revoked). Sign in again.");
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const isSupervisor = () => me && (me.role === "supervisor" || me.role === "admin");
const short = (sid) => `…${sid.slice(-6)}`;

function announce(text) {
  if ($("status").textContent !== text) $("status").textContent = text;
}

function departmentName(id) {
  if (!id) return "No department yet";
  const found = departments.find((d) => d.id === id);
  return found ? found.name : id;
}

// -- signing in and out ------------------------------------------------------------------

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    me = await api("GET", "/me");
  } catch (error) {
    if (error.status !== 401) $("sign-in-error").textContent = error.message;
    sessionStorage.removeItem(TOKEN_KEY);
    return;
  }
  if (!["agent", "supervisor", "admin", "governance"].includes(me.role)) {
    signOut(`The console has no view for ${me.name}'s role (${me.role}).`);
    return;
  }
  try {
    departments = (await api("GET", "/policy")).departments;
  } catch {
    departments = []; // no active policy: calls show department ids, transfers are off
  }
  $("who").textContent = `Signed in as ${me.name} (${me.role})`;
  $("calls-title").textContent = isSupervisor() ? "All live calls" : "Your live calls";
  $("sign-in").hidden = true;
  $("sign-in-error").textContent = "";
  $("who").hidden = $("sign-out").hidden = false;
  // Governance officers have no live calls (the API refuses them): their view only.
  if (me.role !== "governance") {
    $("calls").hidden = false;
    poll();
  }
  if (me.role === "governance" || me.role === "admin") showGovernance(); // governance.js
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  clearTimeout(timer);
  cards.clear();
  $("call-list").replaceChildren();
  $("calls").hidden = $("who").hidden = $("sign-out").hidden = true;
  hideGovernance(); // governance.js
  $("sign-in").hidden = false;
  $("token").value = "";
  $("sign-in-error").textContent = message || "";
  $("token").focus();
}

// -- the list of live calls ----------------------------------------------------------------

async function poll() {
  clearTimeout(timer);
  try {
    render((await api("GET", "/calls?active=true")).items);
    $("call-list").classList.remove("stale");
    if ($("status").dataset.lost) {
      delete $("status").dataset.lost;
      announce("Connection restored.");
    }
  } catch (error) {
    if (error.status === 401) return;
    // What is on screen may be out of date: say so rather than show it as the truth.
    $("status").dataset.lost = "1";
    $("call-list").classList.add("stale");
    announce(`Connection to callguard lost (${error.message}): the states shown may be out of date.`);
  }
  if (me) timer = setTimeout(poll, POLL_MS);
}

function render(calls) {
  const seen = new Set();
  for (const call of calls) {
    seen.add(call.call_sid);
    let card = cards.get(call.call_sid);
    if (!card) {
      card = createCard(call);
      cards.set(call.call_sid, card);
      $("call-list").append(card.element);
    }
    if (!card.busy) update(card, call);
  }
  for (const [sid, card] of cards) {
    if (!seen.has(sid)) {
      card.element.remove();
      cards.delete(sid);
      announce(card.farewell || `Call ${short(sid)} has ended or left your list.`);
    }
  }
  $("empty").hidden = cards.size > 0;
}

function createCard(call) {
  const element = $("call-card").content.firstElementChild.cloneNode(true);
  const card = { element, call, busy: false, pauseFailed: false, eventsOpen: false };
  card.adviceFor = null; // where the call was when a refused transfer's advice was shown
  const q = (selector) => element.querySelector(selector);
  element.dataset.callSid = call.call_sid;
  q("article").setAttribute("aria-label", `Call ${short(call.call_sid)}`);
  for (const node of element.querySelectorAll(".supervisor-only")) node.hidden = !isSupervisor();
  q(".pause").addEventListener("click", () => act(card, pause));
  q(".resume").addEventListener("click", () => act(card, resume));
  q(".opt-out").addEventListener("click", () => act(card, optOut));
  q(".transfer-to").addEventListener("change", () => syncTransfer(card));
  q(".transfer-go").addEventListener("click", () => {
    // Focusable while refusing (aria-disabled, not disabled), so that it can say why.
    if (q(".transfer-to").value) act(card, transfer);
    else {
      q(".outcome").textContent = "Choose a department to transfer to first.";
      q(".transfer-to").focus();
    }
  });
  q(".non-recorded").addEventListener("click", () => openNonRecorded(card));
  q(".timeline").addEventListener("click", () => toggleTimeline(card));
  return card;
}

function stateOf(call) {
  const label =
    call.recording === "recording"
      ? "RECORDING"
      : call.recording === "paused"
        ? call.payment_in_progress ? "PAUSED FOR PAYMENT" : "PAUSED"
        : "NOT RECORDED";
  let reason = call.reasons.map((code) => REASONS[code] || code).join("; ");
  if (call.recording === "recording" && call.desired !== "recording") {
    reason = `callguard has asked the platform to ${call.desired === "paused" ? "pause" : "stop"}; not confirmed yet`;
  } else if (call.recording !== "recording" && call.desired === "recording") {
    reason = "recording should start; the platform has not confirmed it yet";
  }
  return { label, reason: reason ? `— ${reason}` : "" };
}

function update(card, call) {
  card.call = call;
  const { element } = card;
  const q = (selector) => element.querySelector(selector);
  q(".title-department").textContent = departmentName(call.department);
  q(".title-call").textContent = `call ${short(call.call_sid)}`;
  q(".agent").textContent = isSupervisor()
    ? call.agent ? `Agent: ${call.agent}` : "Waiting in the queue: no agent yet"
    : "";
  const state = stateOf(call);
  element.classList.remove("recording", "paused", "off");
  element.classList.add(call.recording);
  q(".state-label").textContent = state.label;
  q(".state-reason").textContent = state.reason;
  // A refused transfer's advice (how to move the call in the platform's own tool, e.g.
  // Connect's CCP) holds only while the call is where it was given: once a poll shows it
  // moved, or put on the non-recorded line by a supervisor, the advice would mislead.
  if (card.adviceFor !== null && card.adviceFor !== placeOf(call)) {
    card.adviceFor = null;
    q(".outcome").textContent = "";
  }

  // Card details may be taken only once the platform confirmed: payment in progress and
  // nothing recording. Anything else while paying is the red warning, never "resume".
  const confirmedPaused = call.payment_in_progress && call.recording !== "recording";
  if (confirmedPaused || !call.payment_in_progress) card.pauseFailed = false;
  const warn = !confirmedPaused && (card.pauseFailed || call.payment_in_progress);
  const warning = q(".warning");
  if (warn && warning.hidden) warning.textContent = "NOT paused — do not take card details";
  warning.hidden = !warn;
  q(".pause").hidden = confirmedPaused;
  q(".pause").textContent = warn ? "Try pausing again" : "Pause for payment";
  q(".resume").hidden = !confirmedPaused;

  const optOutButton = q(".opt-out");
  optOutButton.disabled = call.opted_out;
  optOutButton.textContent = call.opted_out ? "Opt-out recorded" : "Opt-out requested";
  if (call.opted_out && !q(".outcome").textContent) q(".outcome").textContent = optOutText(call);

  const nonRecorded = q(".non-recorded");
  nonRecorded.disabled = call.non_recorded_line;
  nonRecorded.textContent = call.non_recorded_line
    ? "On the non-recorded line"
    : "Move to non-recorded line";

  const select = q(".transfer-to");
  if (select.dataset.from !== String(call.department)) {
    select.dataset.from = String(call.department);
    // Nothing chosen until the person chooses: one stray click must not move a call.
    select.replaceChildren(
      new Option("Choose a department", ""),
      ...departments
        .filter((d) => d.id !== call.department)
        .map((d) => new Option(`${d.name}${d.recorded ? "" : " (not recorded)"}`, d.id)),
    );
  }
  syncTransfer(card);
  q(".transfer").hidden = departments.length === 0 || call.non_recorded_line;
  if (card.eventsOpen) loadEvents(card).catch(() => {}); // shown again next poll
}

const placeOf = (call) => `${call.department}|${call.non_recorded_line}`;

function syncTransfer(card) {
  const chosen = Boolean(card.element.querySelector(".transfer-to").value);
  card.element.querySelector(".transfer-go").setAttribute("aria-disabled", String(!chosen));
}

function optOutText(call, answer) {
  const advise = answer ? answer.action === "advise_email" : call.reasons.includes("opted_out_advise_email");
  if (!advise) return "The caller's opt-out is recorded: recording has stopped.";
  const department = departments.find((d) => d.id === call.department);
  const email = (answer && answer.email) || (department && department.email);
  return `This department keeps recording: advise the caller to contact us by email${email ? ` at ${email}` : ""}.`;
}

// -- actions -------------------------------------------------------------------------------

async function act(card, action) {
  const { element } = card;
  const buttons = element.querySelectorAll("button, select");
  card.busy = true;
  card.adviceFor = null; // the action's own outcome replaces any advice shown
  element.setAttribute("aria-busy", "true");
  for (const node of buttons) node.dataset.wasDisabled = node.disabled ? "1" : "";
  for (const node of buttons) node.disabled = true;
  try {
    await action(card, element.querySelector(".outcome"));
  } catch (error) {
    if (error.status !== 401) element.querySelector(".outcome").textContent = `Failed: ${error.message}`;
  } finally {
    card.busy = false;
    element.removeAttribute("aria-busy");
    for (const node of buttons) node.disabled = node.dataset.wasDisabled === "1";
    if (cards.get(card.call.call_sid) === card) update(card, card.call);
  }
}

const path = (card, action) => `/calls/${encodeURIComponent(card.call.call_sid)}/${action}`;

async function pause(card, outcome) {
  try {
    card.call = await api("POST", path(card, "payment/start"));
    outcome.textContent = "Paused: the platform confirmed. You may take card details.";
  } catch (error) {
    if (!error.body || error.body.error !== "pause_not_confirmed") throw error;
    card.pauseFailed = true;
    card.call = await api("GET", `/calls/${encodeURIComponent(card.call.call_sid)}`);
    outcome.textContent = "The platform did not confirm the pause. Do not take card details.";
  }
}

async function resume(card, outcome) {
  card.call = await api("POST", path(card, "payment/end"));
  outcome.textContent =
    card.call.recording === "recording" || card.call.desired === "recording"
      ? "Payment finished: recording resumed."
      : "Payment finished: recording stays off.";
}

async function optOut(card, outcome) {
  const answer = await api("POST", path(card, "opt-out"));
  const { action: _action, email: _email, ...call } = answer;
  card.call = call;
  outcome.textContent = optOutText(call, answer);
}

async function transfer(card, outcome) {
  const target = card.element.querySelector(".transfer-to").value;
  try {
    card.call = await api("POST", path(card, "transfer"), { department: target });
  } catch (error) {
    // A platform where people transfer calls themselves: its sentence says how.
    if (!error.body || error.body.error !== "transfer_unsupported") throw error;
    outcome.textContent = `Not transferred by callguard. ${error.message}`;
    card.adviceFor = placeOf(card.call);
    return;
  }
  outcome.textContent = `Transferred to ${departmentName(target)}.`;
  card.farewell = `Call ${short(card.call.call_sid)} transferred to ${departmentName(target)}.`;
  announce(card.farewell);
  poll();
}

function openNonRecorded(card) {
  dialogCard = card;
  $("non-recorded-reason").value = "";
  $("non-recorded-error").textContent = "";
  $("non-recorded-title").textContent =
    `Move call ${short(card.call.call_sid)} to the non-recorded line`;
  $("non-recorded-dialog").showModal();
}

async function confirmNonRecorded(event) {
  event.preventDefault();
  const reason = $("non-recorded-reason").value.trim();
  if (!reason) {
    $("non-recorded-error").textContent = "Give a reason: it is kept in the audit log.";
    $("non-recorded-reason").focus();
    return;
  }
  const card = dialogCard;
  $("non-recorded-dialog").close();
  await act(card, async (c, outcome) => {
    const answer = await api("POST", path(c, "transfer"), { non_recorded_line: true, reason });
    const { instruction, ...call } = answer;
    c.call = call;
    // Where the platform leaves the move itself to the supervisor, what to do now.
    outcome.textContent =
      instruction || "Moved to the non-recorded line: recording stopped for good.";
  });
  card.element.querySelector(".non-recorded").focus();
}

async function toggleTimeline(card) {
  card.eventsOpen = !card.eventsOpen;
  const button = card.element.querySelector(".timeline");
  button.setAttribute("aria-expanded", String(card.eventsOpen));
  card.element.querySelector(".events").hidden = !card.eventsOpen;
  if (card.eventsOpen) await loadEvents(card);
}

async function loadEvents(card) {
  const { items } = await api("GET", path(card, "events"));
  card.element.querySelector(".events").replaceChildren(
    ...items.map((event) => {
      const item = document.createElement("li");
      const reasons = event.reasons.map((code) => REASONS[code] || code).join("; ");
      const time = new Date(event.occurred_at).toLocaleTimeString();
      item.textContent = `${time} ${event.type} by ${event.actor}${reasons ? ` — ${reasons}` : ""}`;
      return item;
    }),
  );
}

// -- wiring --------------------------------------------------------------------------------

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("token").value.trim());
});
$("sign-out").addEventListener("click", () => signOut("Signed out."));
$("non-recorded-form").addEventListener("submit", confirmNonRecorded);
$("non-recorded-cancel").addEventListener("click", () => $("non-recorded-dialog").close());

// After every deferred script (governance.js and governance-tasks.js) has run.
document.addEventListener("DOMContentLoaded", () => {
  if (sessionStorage.getItem(TOKEN_KEY)) signIn(sessionStorage.getItem(TOKEN_KEY));
  else $("token").focus();
});
