"use strict";
// A recording's history in words: its call's event timeline (the audit log's events, as
// supervisors have it) and, for a destroyed recording, the evidence the platform gave the
// retention run (app/retention/run.py writes it into the `recording.destroyed` event: the
// answer to the DELETE, then the fetch that found it gone). A failed deletion is put in
// words the same way (also used by governance-retention.js). Uses api() and REASONS from
// console.js and when() and outcomeOf() from governance.js (all loaded first).

const DESTROYED = "recording.destroyed";
const DESTROY_FAILED = "recording.destroy_failed";

// Where a deletion failed (the `stage` of app/retention/run.py's failure detail).
const STAGES = {
  delete: "asking the platform to delete it",
  confirm: "checking with the platform that it was gone",
  error: "inside callguard (an unexpected error: see the service's log)",
};

function platformAnswer(answer) {
  return `HTTP ${answer.status}${answer.code ? `, error ${answer.code}` : ""}`;
}

// The platform's evidence that a recording is gone, from a `recording.destroyed` detail.
function destructionEvidence(detail) {
  const { delete: deleted, fetch: fetched } = detail;
  if (!deleted || !fetched) return "The platform's answers were not recorded with it.";
  const asked =
    deleted.status === 204
      ? `The platform accepted the deletion (${platformAnswer(deleted)})`
      : `Asked to delete it, the platform already had no such recording (${platformAnswer(deleted)})`;
  return `${asked}; asked for it afterwards, it answered that the recording does not exist (${platformAnswer(fetched)}): it is gone.`;
}

// Why a deletion failed, from a `recording.destroy_failed` detail or the overview's last_error.
function failureText(failure) {
  const stage = STAGES[failure.stage] || `at the step “${failure.stage}”`;
  if (failure.error === "still_present") {
    return `Failed while ${stage}: the platform accepted the deletion but still has the recording.`;
  }
  const answer = failure.status ? ` the platform answered ${platformAnswer(failure)}:` : "";
  return `Failed while ${stage}:${answer} “${failure.error}”.`;
}

function eventText(event) {
  const reasons = event.reasons.map((code) => REASONS[code] || code).join("; ");
  let text = `${when(event.occurred_at)} ${event.type} by ${event.actor}${reasons ? ` — ${reasons}` : ""}`;
  const { detail } = event;
  if (event.type === DESTROYED) {
    text += ` — ${destructionEvidence(detail)} Retention run ${detail.worker}; due after ${when(detail.destroy_after)}.`;
  } else if (event.type === DESTROY_FAILED) {
    text += ` — not destroyed. ${failureText(detail)} It stays due: the next run retries it.`;
  }
  return text;
}

// -- the destroyed recording's evidence, on its card -------------------------------------

async function showDestruction(card) {
  const destroyed = card.element.querySelector(".destroyed");
  if (card.evidence === undefined) {
    const sid = encodeURIComponent(card.recording.recording_sid);
    try {
      const { items } = await api("GET", `/audit?recording_sid=${sid}`);
      card.evidence = items.filter((event) => event.type === DESTROYED).at(-1) || null;
    } catch (error) {
      if (error.status !== 401) destroyed.textContent += ` (its evidence was not loaded: ${error.message}).`;
      return;
    }
  }
  destroyed.textContent =
    `Yes, on ${when(card.recording.destroyed_at)}. ` +
    (card.evidence
      ? destructionEvidence(card.evidence.detail)
      : "The audit log holds no evidence from the platform for it.");
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
      item.textContent = eventText(event);
      return item;
    }),
  );
}
