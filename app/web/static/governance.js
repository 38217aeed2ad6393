"use strict";
// The information-governance officer's view: recordings found by number, department or
// hold; legal holds, listening for a purpose, disclosures and each call's event timeline.
// Uses api(), $, departmentName() and REASONS from console.js (loaded first). An admin sees
// it read-only: only what the API lets an admin do is offered (search, listen for a review
// purpose, timelines); holds and disclosures are governance-only there.

// The purposes each role may listen for (app/retention/access.py; the API refuses others).
const REVIEW = ["quality_monitoring", "complaint", "staff_safety"];
const PURPOSES = {
  admin: REVIEW,
  governance: [...REVIEW, "crime_prevention", "subject_access"],
};
const PURPOSE_TEXT = {
  quality_monitoring: "Quality monitoring and training",
  complaint: "Investigating a complaint",
  staff_safety: "Staff safety",
  crime_prevention: "Preventing or detecting crime",
  subject_access: "A subject access request",
};
const isGovernance = () => me && me.role === "governance";
const recordingCards = new Map(); // recording_sid -> {element, recording}
let dialogRecording = null; // the card a dialog acts on
let releasing = null; // {card, hold}

function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

function untilText(iso) {
  const days = Math.round((new Date(iso) - Date.now()) / 86400000);
  if (days > 0) return `in ${days} day${days === 1 ? "" : "s"}`;
  if (days === 0) return "today";
  return `overdue by ${-days} day${days === -1 ? "" : "s"}`;
}

function showGovernance() {
  $("governance").hidden = $("audit").hidden = false;
  $("tasks").hidden = !isGovernance(); // the notifications routes are governance-only
  $("read-only-note").hidden = isGovernance();
  $("search-department").replaceChildren(
    new Option("Any department", ""),
    ...departments.map((d) => new Option(d.name, d.id)),
  );
  searchRecordings();
  if (isGovernance()) loadTasks(); // governance-tasks.js
}

function hideGovernance() {
  for (const id of ["governance", "tasks", "audit"]) $(id).hidden = true;
  recordingCards.clear();
  $("recording-list").replaceChildren();
  $("task-list").replaceChildren();
  for (const id of ["gov-status", "tasks-status", "verify-result"]) $(id).textContent = "";
}

// -- the recordings list -----------------------------------------------------------------

async function searchRecordings(event) {
  if (event) event.preventDefault();
  const query = new URLSearchParams();
  const phone = $("search-phone").value.trim();
  if (phone) query.set("phone", phone);
  if ($("search-department").value) query.set("department", $("search-department").value);
  if ($("search-held").value) query.set("held", $("search-held").value);
  $("gov-status").textContent = "Searching…";
  let items;
  try {
    ({ items } = await api("GET", `/recordings?${query}`));
  } catch (error) {
    if (error.status !== 401) $("gov-status").textContent = `Search refused: ${error.message}`;
    return;
  }
  recordingCards.clear();
  $("recording-list").replaceChildren(...items.map((r) => createRecordingCard(r).element));
  $("gov-status").textContent =
    items.length === 0
      ? "No recordings match."
      : `${items.length} recording${items.length === 1 ? "" : "s"} found, newest first.`;
}

function createRecordingCard(recording) {
  const element = $("recording-card").content.firstElementChild.cloneNode(true);
  const card = { element, recording };
  const q = (selector) => element.querySelector(selector);
  element.dataset.recordingSid = recording.recording_sid;
  for (const node of element.querySelectorAll(".governance-only")) node.hidden = !isGovernance();
  q(".purpose").replaceChildren(
    new Option("Choose a purpose", ""),
    ...(PURPOSES[me.role] || []).map((p) => new Option(PURPOSE_TEXT[p], p)),
  );
  q(".place-hold").addEventListener("click", () => openHold(card));
  q(".disclose").addEventListener("click", () => openDisclose(card));
  q(".listen-go").addEventListener("click", () => listen(card));
  q(".timeline").addEventListener("click", () => toggleRecordingTimeline(card));
  recordingCards.set(recording.recording_sid, card);
  fillRecording(card, recording);
  return card;
}

function fillRecording(card, recording) {
  card.recording = recording;
  const q = (selector) => card.element.querySelector(selector);
  const sid = recording.recording_sid;
  q("article").setAttribute("aria-label", `Recording ${short(sid)}`);
  const name = document.createElement("span");
  name.className = "title-call"; // "recording …b67e6f" is never split across lines
  name.textContent = `recording ${short(sid)}`;
  q(".title").replaceChildren(`${departmentName(recording.department)} — `, name);
  q(".completed").textContent = recording.completed_at
    ? when(recording.completed_at)
    : `Not completed (${recording.status})`;
  q(".destroy-after").textContent = recording.destroy_after
    ? recording.destroyed_at
      ? when(recording.destroy_after)
      : `${when(recording.destroy_after)} (${untilText(recording.destroy_after)})`
    : "Not set until the recording completes";
  q(".destroyed").textContent = recording.destroyed_at
    ? `Yes, on ${when(recording.destroyed_at)} (the platform showed it gone; see the timeline)`
    : "No";
  const active = recording.holds.filter((h) => h.active);
  q(".holds-summary").textContent =
    active.length === 0
      ? recording.holds.length ? "None active (all released)" : "None"
      : `${active.length} active: kept until released`;
  q(".holds").replaceChildren(...recording.holds.map((hold) => holdItem(card, hold)));
  const gone = Boolean(recording.destroyed_at);
  q(".place-hold").hidden = q(".disclose").hidden = !isGovernance() || gone;
  // Audio exists only for a completed recording not yet destroyed (the API says 409/410).
  q(".listen").hidden = gone || !recording.completed_at;
}

function holdItem(card, hold) {
  const item = document.createElement("li");
  const text = document.createElement("span");
  text.textContent = hold.active
    ? `Case ${hold.case_reference}: held by ${hold.placed_by} since ${when(hold.placed_at)} — ${hold.reason}`
    : `Case ${hold.case_reference}: released by ${hold.released_by} on ${when(hold.released_at)}`;
  item.append(text);
  if (hold.active && isGovernance()) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "release";
    button.textContent = `Release case ${hold.case_reference}`;
    button.addEventListener("click", () => openRelease(card, hold));
    item.append(" ", button);
  }
  return item;
}

async function refreshRecording(card) {
  const recording = await api("GET", `/recordings/${encodeURIComponent(card.recording.recording_sid)}`);
  fillRecording(card, recording);
  if (card.eventsOpen) await loadRecordingEvents(card);
}

function outcomeOf(card, text) {
  card.element.querySelector(".outcome").textContent = text;
}

// -- legal holds -----------------------------------------------------------------------------

function openDialog(id, card, title) {
  dialogRecording = card;
  const form = $(id).querySelector("form");
  form.reset();
  form.querySelector(".error").textContent = "";
  form.querySelector("h2").textContent = title;
  $(id).showModal();
}

function openHold(card) {
  openDialog("hold-dialog", card, `Place a legal hold on recording ${short(card.recording.recording_sid)}`);
}

async function placeHold(event) {
  event.preventDefault();
  const case_reference = $("hold-case").value.trim();
  const reason = $("hold-reason").value.trim();
  const missing = !case_reference ? "hold-case" : !reason ? "hold-reason" : null;
  if (missing) {
    $("hold-error").textContent = `${missing === "hold-case" ? "Case reference" : "Reason"}: is required.`;
    $(missing).focus();
    return;
  }
  const card = dialogRecording;
  const path = `/recordings/${encodeURIComponent(card.recording.recording_sid)}/holds`;
  try {
    const hold = await api("POST", path, { case_reference, reason });
    $("hold-dialog").close();
    outcomeOf(
      card,
      `Hold placed for case ${hold.case_reference}: this recording will not be destroyed until ` +
        `every hold is released. The caller must be told: task ${hold.notification_id} is ` +
        "waiting in Callers to tell.",
    );
    await refreshRecording(card);
    loadTasks(); // governance-tasks.js: the new caller to tell
  } catch (error) {
    if (error.status === 401) return;
    const why =
      error.status === 409
        ? "nothing has changed: it is not held, and the run may destroy it"
        : error.status === 410
          ? "the recording has already been destroyed: there is nothing left to keep"
          : "";
    $("hold-error").textContent = `Not placed: ${error.message}${why ? ` (${why})` : ""}.`;
    return; // the dialog stays open with the answer
  }
  card.element.querySelector(".place-hold").focus();
}

function openRelease(card, hold) {
  releasing = { card, hold };
  const others = card.recording.holds.filter((h) => h.active && h.id !== hold.id).length;
  const due = card.recording.destroy_after && new Date(card.recording.destroy_after) <= Date.now();
  $("release-error").textContent = "";
  $("release-title").textContent = `Release the hold for case ${hold.case_reference}`;
  $("release-consequence").textContent = others
    ? `${others} other hold${others === 1 ? "" : "s"} still keep${others === 1 ? "s" : ""} this recording.`
    : due
      ? "No other hold keeps this recording and its destruction date has passed: it will be destroyed at the next retention run."
      : `No other hold keeps this recording: it will be destroyed after ${when(card.recording.destroy_after)}.`;
  $("release-dialog").showModal();
}

async function releaseHold(event) {
  event.preventDefault();
  const { card, hold } = releasing;
  const sid = encodeURIComponent(card.recording.recording_sid);
  try {
    await api("DELETE", `/recordings/${sid}/holds/${hold.id}`);
    $("release-dialog").close();
    outcomeOf(card, `Hold for case ${hold.case_reference} released. ${$("release-consequence").textContent}`);
    await refreshRecording(card);
  } catch (error) {
    if (error.status !== 401) $("release-error").textContent = `Not released: ${error.message}.`;
    return;
  }
  card.element.querySelector(".place-hold").focus();
}

// -- listening for a purpose ---------------------------------------------------------------

async function listen(card) {
  const q = (selector) => card.element.querySelector(selector);
  const purpose = q(".purpose").value;
  if (!purpose) {
    outcomeOf(card, "Choose the purpose you are listening for first.");
    q(".purpose").focus();
    return;
  }
  const path = `/recordings/${encodeURIComponent(card.recording.recording_sid)}/access`;
  try {
    const access = await api("POST", path, { purpose });
    const audio = q("audio");
    audio.src = access.media_url;
    audio.setAttribute("aria-label", `Recording ${short(card.recording.recording_sid)}`);
    q(".expires").textContent = `This link works until ${when(access.expires_at)} (then ask again).`;
    q(".player").hidden = false;
    outcomeOf(card, `Access for ${PURPOSE_TEXT[purpose].toLowerCase()} recorded in the audit log: press play.`);
    audio.focus();
    if (card.eventsOpen) await loadRecordingEvents(card);
  } catch (error) {
    if (error.status !== 401) outcomeOf(card, `Refused: ${error.message}.`);
  }
}

// -- the call's event timeline -----------------------------------------------------------

async function toggleRecordingTimeline(card) {
  card.eventsOpen = !card.eventsOpen;
  card.element.querySelector(".timeline").setAttribute("aria-expanded", String(card.eventsOpen));
  card.element.querySelector(".events").hidden = !card.eventsOpen;
  if (card.eventsOpen) await loadRecordingEvents(card);
}

async function loadRecordingEvents(card) {
  const call = encodeURIComponent(card.recording.call_sid);
  let items;
  try {
    ({ items } = await api("GET", `/audit?call_sid=${call}`));
  } catch (error) {
    if (error.status !== 401) outcomeOf(card, `Timeline not loaded: ${error.message}.`);
    return;
  }
  card.element.querySelector(".events").replaceChildren(
    ...items.map((event) => {
      const item = document.createElement("li");
      const reasons = event.reasons.map((code) => REASONS[code] || code).join("; ");
      item.textContent = `${when(event.occurred_at)} ${event.type} by ${event.actor}${reasons ? ` — ${reasons}` : ""}`;
      return item;
    }),
  );
}

// -- wiring ----------------------------------------------------------------------------------

$("search-form").addEventListener("submit", searchRecordings);
$("hold-form").addEventListener("submit", placeHold);
$("release-form").addEventListener("submit", releaseHold);
for (const id of ["hold-dialog", "release-dialog", "disclose-dialog", "told-dialog"]) {
  const dialog = $(id);
  dialog.querySelector(".cancel").addEventListener("click", () => dialog.close());
}
