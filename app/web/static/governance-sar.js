"use strict";
// Subject access, as the caller receives it: the bundle (GET /api/v1/subject-access/bundle,
// governance only) downloaded as a ZIP file. Uses $, TOKEN_KEY, ApiError and signOut() from
// console.js (loaded first).
//
// The bearer token lives in this tab's sessionStorage and must never go into a URL, so a
// plain link cannot fetch the bundle: the page fetches it with the Authorization header,
// then saves the bytes through an object URL (blob:) on a link with a `download` name. The
// CSP needs no change for that: connect-src 'self' covers the fetch, and saving a download
// is not a fetch the CSP's directives govern (no directive lists blob: as a source because
// nothing is loaded into the page from it: no script, style, image or media).

const BUNDLE_NAME = "subject-access.zip";

// The file name the API gives (Content-Disposition), or ours.
function bundleName(response) {
  const given = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return given ? given[1] : BUNDLE_NAME;
}

async function fetchBundle(phone) {
  const response = await fetch(`/api/v1/subject-access/bundle?${new URLSearchParams({ phone })}`, {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` },
    cache: "no-store",
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) {
      signOut("Your token was refused (it may have been revoked). Sign in again.");
    }
    throw new ApiError(response.status, body);
  }
  return { name: bundleName(response), blob: await response.blob() };
}

function saveBundle(name, blob) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The download has its own copy once it has started; the object URL is then let go.
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

async function downloadBundle(event) {
  event.preventDefault();
  const phone = $("sar-phone").value.trim();
  $("sar-error").textContent = "";
  if (!phone) {
    $("sar-error").textContent = "The requester's phone number: is required.";
    $("sar-phone").focus();
    return;
  }
  const button = $("sar-download");
  // Refusing a second press while one is prepared; aria-disabled keeps its focus.
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  $("sar-status").textContent =
    "Preparing the bundle: each recording's audio is fetched from the platform, which can take a minute…";
  try {
    const { name, blob } = await fetchBundle(phone);
    saveBundle(name, blob);
    $("sar-status").textContent =
      `Downloaded ${name} (${Math.max(1, Math.round(blob.size / 1024))} KB) for ${phone}: ` +
      "give it to the caller. The export is recorded in the audit log.";
  } catch (error) {
    $("sar-status").textContent = "";
    if (error.status !== 401) $("sar-error").textContent = `Not downloaded: ${error.message}.`;
    $("sar-phone").focus();
  } finally {
    button.setAttribute("aria-disabled", "false");
  }
}

$("sar-form").addEventListener("submit", downloadBundle);
