"use strict";
// The information-governance officer's view: recordings found by number, department, hold
// and completion date, 50 a page (More follows the API's cursor); legal holds and listening
// for a purpose. Uses api(), $, short(), departmentName() from console.js (loaded first);
// the timeline and the destruction evidence are in governance-history.js, the other
// sections in governance-tasks.js, governance-retention.js and governance-sar.js. An admin
// sees it read-only: only what the API lets an admin do is offered (search, listen for a
// review purpose, timelines, retention at a glance); the rest is governance-only there.

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
// The search the list shows: {query, next (the API's cursor of the page after), shown, busy}.
let searched = null;

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
  $("governance").hidden = $("audit").hidden = $("retention").hidden = false;
  // The notifications and subject-access routes are governance-only.
  $("tasks").hidden = $("subject-access").hidden = !isGovernance();
  $("read-only-note").hidden = isGovernance();
  $("search-department").replaceChildren(
    new Option("Any department", ""),
    ...departments.map((d) => new Option(d.name, d.id)),
  );
  searchRecordings();
  loadOverview(); // governance-retention.js
  if (isGovernance()) loadTasks(); // governance-tasks.js
}

function hideGovernance() {
  for (const id of ["retention", "governance", "subject-access", "tasks", "audit"]) {
    $(id).hidden = true;
  }
  recordingCards.clear();
  searched = null;
  $("more").hidden = $("retention-failed").hidden = true;
  delete $("retention-failed").dataset.seen;
  for (const id of ["recording-list", "task-list", "retention-facts", "retention-lists"]) {
    $(id).replaceChildren();
  }
  for (const form of ["search-form", "sar-form"]) $(form).reset();
  const texts = ["gov-status", "tasks-status", "verify-result", "retention-status", "sar-error", "sar-status"];
  for (const id of texts) $(id).textContent = "";
}

// -- the recordings list -----------------------------------------------------------------

// A date field's day in this browser's zone, as the instants the API compares completed_at
// with: `from` is that day's first moment; `to` (inclusive in the API) its last microsecond,
// written out by hand because a Date stops at milliseconds.
function dayStart(day) {
  return new Date(`${day}T00:00:00`);
}

function dayBounds() {
  const from = $("search-from").value;
  const to = $("search-to").value;
  if (from && to && dayStart(from) > dayStart(to)) {
    return { problem: "Completed on or after: must not be later than “completed on or before”." };
  }
  const bounds = {};
  if (from) bounds.from = dayStart(from).toISOString();
  if (to) {
    const next = dayStart(to);
    next.setDate(next.getDate() + 1);
    bounds.to = new Date(next - 1).toISOString().replace(/\.999Z$/, ".999999Z");
  }
  return bounds;
}

async function searchRecordings(event) {
  if (event) event.preventDefault();
  const query = new URLSearchParams();
  const phone = $("search-phone").value.trim();
  if (phone) query.set("phone", phone);
  if ($("search-department").value) query.set("department", $("search-department").value);
  if ($("search-held").value) query.set("held", $("search-held").value);
  const bounds = dayBounds();
  if (bounds.problem) {
    $("gov-status").textContent = bounds.problem;
    $("search-from").focus();
    return;
  }
  for (const name of ["from", "to"]) if (bounds[name]) query.set(name, bounds[name]);
  $("gov-status").textContent = "Searching…";
  let page;
  try {
    page = await api("GET", `/recordings?${query}`);
  } catch (error) {
    if (error.status !== 401) $("gov-status").textContent = `Search refused: ${error.message}`;
    return;
  }
  recordingCards.clear();
  searched = { query, next: page.next, shown: page.items.length };
  $("recording-list").replaceChildren(...page.items.map((r) => createRecordingCard(r).element));
  showPaging();
}

// The next page of the same search (the API's `next` cursor; 50 a page, its default).
async function moreRecordings() {
  const current = searched;
  if (!current || !current.next || current.busy) return; // one page at a time, never twice
  const query = new URLSearchParams(current.query);
  query.set("cursor", current.next);
  $("gov-status").textContent = "Loading older recordings…";
  current.busy = true;
  let page;
  try {
    page = await api("GET", `/recordings?${query}`);
  } catch (error) {
    if (error.status !== 401) $("gov-status").textContent = `More refused: ${error.message}`;
    return;
  } finally {
    current.busy = false;
  }
  if (searched !== current) return; // a new search has replaced the list meanwhile
  const cards = page.items.map((r) => createRecordingCard(r));
  $("recording-list").append(...cards.map((card) => card.element));
  searched.next = page.next;
  searched.shown += page.items.length;
  showPaging();
  // The keyboard carries on from the first new card (More, if any, follows the last).
  if (cards.length) cards[0].element.querySelector("article").focus();
}

function showPaging() {
  const { next, shown } = searched;
  $("more").hidden = !next;
  $("gov-status").textContent =
    shown === 0
      ? "No recordings match."
      : next
        ? `${shown} recordings shown, newest first: More shows older ones.`
        : `${shown} recording${shown === 1 ? "" : "s"} found, newest first.`;
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
  q(".timeline").addEventListener("click", () => toggleRecordingTimeline(card)); // governance-history.js
  recordingCards.set(recording.recording_sid, card);
  fillRecording(card, recording);
  return card;
}

function fillRecording(card, recording) {
  card.recording = recording;
  const q = (selector) => card.element.querySelector(selector);
  const sid = recording.recording_sid;
  const name = document.createElement("span");
  name.className = "title-call"; // "recording …b67e6f" is never split across lines
  name.textContent = `recording ${short(sid)}`;
  // The card's one title: the article is named by this heading (aria-labelledby).
  q(".title").id = `title-${sid}`;
  q("article").setAttribute("aria-labelledby", q(".title").id);
  q(".title").replaceChildren(`${departmentName(recording.department)} — `, name);
  q(".completed").textContent = recording.completed_at
    ? when(recording.completed_at)
    : `Not completed (${recording.status})`;
  q(".destroy-after").textContent = recording.destroy_after
    ? recording.destroyed_at
      ? when(recording.destroy_after)
      : `${when(recording.destroy_after)} (${untilText(recording.destroy_after)})`
    : "Not set until the recording completes";
  q(".destroyed").textContent = recording.destroyed_at ? `Yes, on ${when(recording.destroyed_at)}` : "No";
  if (recording.destroyed_at) showDestruction(card); // governance-history.js: its evidence
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
  if (card.eventsOpen) await loadRecordingEvents(card); // governance-history.js
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
    loadOverview(); // governance-retention.js: it is held now
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
    loadOverview(); // governance-retention.js
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

// -- wiring ----------------------------------------------------------------------------------

$("search-form").addEventListener("submit", searchRecordings);
$("more").addEventListener("click", moreRecordings);
$("hold-form").addEventListener("submit", placeHold);
$("release-form").addEventListener("submit", releaseHold);
for (const id of ["hold-dialog", "release-dialog", "disclose-dialog", "told-dialog"]) {
  const dialog = $(id);
  dialog.querySelector(".cancel").addEventListener("click", () => dialog.close());
}
