"use strict";
// The governance officer's forms that follow the API's own rules, and the audit check:
// disclosures (an agreement always; consent or a legal basis when sensitive), callers to
// tell (how, required; when, not in the future), and verifying the audit chain. Uses
// api(), $ and short() from console.js and when(), outcomeOf(), openDialog(),
// refreshRecording() and dialogRecording from governance.js (both loaded first).

// -- disclosures -------------------------------------------------------------------------

function openDisclose(card) {
  openDialog("disclose-dialog", card, `Record a disclosure of recording ${short(card.recording.recording_sid)}`);
}

// The API's rules (app/retention/disclosures.py), checked here first so that nothing is
// sent that it would refuse; its own message is shown if it refuses anyway.
function disclosureProblem(body) {
  if (!body.recipient) return ["disclose-recipient", "Recipient: is required."];
  if (!body.agreement_reference) {
    return ["disclose-agreement", "Data sharing agreement reference: is required."];
  }
  if (body.sensitive && !body.consent_reference && !body.legal_basis) {
    return [
      "disclose-consent",
      "A sensitive matter needs the caller's consent reference or the legal basis: give one.",
    ];
  }
  return null;
}

async function recordDisclosure(event) {
  event.preventDefault();
  const value = (id) => $(id).value.trim() || null;
  const body = {
    recipient: value("disclose-recipient"),
    agreement_reference: value("disclose-agreement"),
    sensitive: $("disclose-sensitive").checked,
    consent_reference: value("disclose-consent"),
    legal_basis: value("disclose-basis"),
  };
  const problem = disclosureProblem(body);
  if (problem) {
    $("disclose-error").textContent = problem[1];
    $(problem[0]).focus();
    return;
  }
  const card = dialogRecording;
  const path = `/recordings/${encodeURIComponent(card.recording.recording_sid)}/disclosures`;
  try {
    const done = await api("POST", path, body);
    $("disclose-dialog").close();
    outcomeOf(
      card,
      `Disclosure to ${done.recipient} recorded under agreement ${done.agreement_reference}` +
        `${done.sensitive ? " (sensitive)" : ""}: it appears in the caller's subject access.`,
    );
    await refreshRecording(card);
    card.element.querySelector(".disclose").focus();
  } catch (error) {
    if (error.status !== 401) $("disclose-error").textContent = `Not recorded: ${error.message}.`;
  }
}

// -- callers to tell -------------------------------------------------------------------------

let telling = null; // the notification the dialog closes

async function loadTasks() {
  const pending = $("tasks-show").value;
  let items;
  try {
    ({ items } = await api("GET", `/notifications?pending=${pending}`));
  } catch (error) {
    if (error.status !== 401) $("tasks-status").textContent = `Not loaded: ${error.message}.`;
    return;
  }
  $("task-list").replaceChildren(...items.map(taskItem));
  $("tasks-status").textContent =
    pending === "true"
      ? items.length ? `${items.length} caller${items.length === 1 ? "" : "s"} still to tell.` : "Nobody is waiting to be told."
      : `${items.length} task${items.length === 1 ? "" : "s"} closed.`;
}

function taskItem(task) {
  const item = document.createElement("li");
  item.className = "task";
  item.dataset.notificationId = task.id;
  const article = document.createElement("article");
  article.setAttribute("aria-label", `Task ${task.id}`);
  const title = document.createElement("h3");
  title.textContent = task.caller_number
    ? `Tell the caller on ${task.caller_number}`
    : "Tell the caller (number withheld or erased: find them from the call)";
  const what = document.createElement("p");
  what.textContent =
    `Recording ${short(task.recording_sid)} of call ${short(task.call_sid)} is kept under ` +
    `legal hold ${task.hold_id} (task ${task.id}, since ${when(task.created_at)}).`;
  article.append(title, what);
  if (task.pending) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `The caller has been told (task ${task.id})`;
    button.addEventListener("click", () => openTold(task));
    article.append(button);
  } else {
    const told = document.createElement("p");
    told.textContent = `Told by ${task.method} on ${when(task.told_at)}; closed by ${task.done_by}${task.note ? ` — ${task.note}` : ""}.`;
    article.append(told);
  }
  item.append(article);
  return item;
}

function openTold(task) {
  telling = task;
  $("told-form").reset();
  $("told-error").textContent = "";
  $("told-title").textContent = `Task ${task.id}: the caller has been told`;
  $("told-at").max = localNow();
  $("told-dialog").showModal();
}

// A datetime-local value for now, in the browser's own zone (what the field shows).
function localNow() {
  const now = new Date();
  return new Date(now - now.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

async function closeTask(event) {
  event.preventDefault();
  const method = $("told-method").value.trim();
  const at = $("told-at").value; // local time, no zone: the browser knows its zone
  // The API's rules (app/retention/notifications.py): how, required; when, not the future.
  if (!method) {
    $("told-error").textContent = "How the caller was told: is required (a letter, a phone call…).";
    $("told-method").focus();
    return;
  }
  if (at && new Date(at) > new Date()) {
    $("told-error").textContent = "When the caller was told: cannot be in the future.";
    $("told-at").focus();
    return;
  }
  const body = { method, note: $("told-note").value.trim() || null };
  if (at) body.told_at = new Date(at).toISOString();
  try {
    await api("POST", `/notifications/${telling.id}/done`, body);
  } catch (error) {
    if (error.status !== 401) $("told-error").textContent = `Not closed: ${error.message}.`;
    return;
  }
  $("told-dialog").close();
  await loadTasks();
  $("tasks-status").textContent = `Task ${telling.id} closed: the caller was told by ${method}. ${$("tasks-status").textContent}`;
  $("tasks-show").focus();
}

// -- the audit chain -------------------------------------------------------------------------

const PROBLEMS = {
  gap: "that event is missing (a gap in the numbering, or the newest events were cut off)",
  content_changed: "that event no longer matches its seal: its content was changed",
  link_broken: "that event does not follow the one before it: rewritten or reordered",
};

async function verifyAudit() {
  $("verify-result").textContent = "Checking every event…";
  try {
    const result = await api("GET", "/audit/verify");
    $("verify-result").className = result.ok ? "" : "error";
    $("verify-result").textContent = result.ok
      ? `The audit log is intact: all ${result.events} events verify, in order, unchanged.`
      : `The audit log is BROKEN at event ${result.sequence}: ${PROBLEMS[result.problem] || result.problem}. Report it now.`;
  } catch (error) {
    if (error.status !== 401) $("verify-result").textContent = `Not checked: ${error.message}.`;
  }
}

$("disclose-form").addEventListener("submit", recordDisclosure);
$("told-form").addEventListener("submit", closeTask);
$("tasks-show").addEventListener("change", loadTasks);
$("verify").addEventListener("click", verifyAudit);
