// iisbulk console: a thin page over the JSON API under /console/api/.
// Every value from the registry enters the page through textContent (the
// `el` helper), never as HTML. The API decides everything: roles, CSRF,
// stale decisions; this script shows its answers and problems.
"use strict";

// Relative to the page (always at <prefix>/console/, where /console
// redirects): the console works behind a path prefix such as an API
// Gateway stage as at the root.
const API = "api";
let session = null; // { username, role, csrf_token }
let keyHandler = null; // the current view's keyboard shortcuts

// --- small helpers ------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function main() {
  return document.getElementById("main");
}

// Replaces a node's children, leaving out the absent ones (null, false).
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function show(...nodes) {
  main().replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function say(message, kind) {
  const status = document.getElementById("status");
  status.className = kind || "";
  status.textContent = message || "";
}

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || "HTTP " + status);
    this.status = status;
    this.problem = problem || {};
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session) headers["X-CSRF-Token"] = session.csrf_token;
  const response = await fetch(API + path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = null;
  const text = await response.text();
  if (text) {
    try {
      json = JSON.parse(text);
    } catch (_) {
      json = { detail: text };
    }
  }
  if (!response.ok) {
    if (response.status === 401 && path !== "/session") {
      session = null;
      renderChrome();
      renderLogin("Your session has ended; log in again.");
    }
    throw new ApiError(response.status, json);
  }
  return json;
}

function failed(error) {
  say(error.message, "error");
}

// Dates and times the way an IIS reads them: ISO dates, local times.
function when(ms) {
  if (ms === null || ms === undefined) return "";
  const millis = ms > 1e12 ? ms : ms * 1000;
  return new Date(millis).toLocaleString();
}

function age(ms) {
  const millis = ms > 1e12 ? ms : ms * 1000;
  const minutes = Math.max(0, Math.round((Date.now() - millis) / 60000));
  if (minutes < 60) return minutes + " min";
  const hours = Math.round(minutes / 60);
  if (hours < 48) return hours + " h";
  return Math.round(hours / 24) + " d";
}

// The registry stamps each demographic field with where it came from:
// show the value.
function unstamp(v) {
  if (v && typeof v === "object" && !Array.isArray(v) && "value" in v) return v.value;
  return v;
}

function fmt(v) {
  v = unstamp(v);
  if (v === null || v === undefined || v === "") return "";
  if (Array.isArray(v)) return v.map(fmt).filter((s) => s !== "").join("; ");
  if (typeof v === "object") {
    if ("year" in v && "month" in v && "day" in v) {
      return String(v.year).padStart(4, "0") + "-" + String(v.month).padStart(2, "0") + "-" + String(v.day).padStart(2, "0");
    }
    if ("family" in v || "given" in v) {
      return [v.family, [v.given, v.middle].filter(Boolean).join(" ")].filter(Boolean).join(", ") +
        (v.suffix ? " " + v.suffix : "");
    }
    if ("street" in v || "city" in v || "zip" in v) {
      return [v.street, v.other, v.city, v.state, v.zip, v.country].filter(Boolean).join(", ");
    }
    if ("local_number" in v || "email" in v) {
      return [v.area_code && "(" + v.area_code + ")", v.local_number, v.extension && "x" + v.extension, v.email]
        .filter(Boolean).join(" ");
    }
    if ("relationship" in v && "name" in v) {
      return [fmt(v.relationship), fmt(v.name)].filter(Boolean).join(": ");
    }
    if ("how" in v && "grade" in v) {
      const grade = v.grade === "none" ? "a new person" : v.grade;
      return v.how + " (" + grade + (typeof v.score === "number" ? ", score " + v.score.toFixed(2) : "") + ")";
    }
    if ("code" in v) return [v.code, v.text || v.display].filter(Boolean).join(" ");
    if ("id" in v && "authority" in v) return v.id + " (" + [v.authority, v.kind].filter(Boolean).join(" ") + ")";
    return Object.entries(v)
      .map(([k, x]) => k + ": " + fmt(x))
      .filter((s) => !s.endsWith(": "))
      .join(", ");
  }
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}

// The demographic fields a reviewer compares, in the order they read them.
const FIELDS = [
  ["Name", (d) => d.name],
  ["Other names", (d) => d.other_names],
  ["Birth date", (d) => d.birth_date],
  ["Sex", (d) => d.sex],
  ["Mother's maiden name", (d) => d.mother_maiden_name],
  ["Multiple birth", (d) => d.multiple_birth],
  ["Birth order", (d) => d.birth_order],
  ["Address", (d) => d.addresses],
  ["Phone", (d) => d.phones],
  ["Next of kin", (d) => d.next_of_kin],
  ["Race", (d) => d.races],
  ["Ethnicity", (d) => d.ethnicity],
  ["Death date", (d) => d.death_date],
];

function demographicsRows(list) {
  // list: [{ heading, demographics }]; a cell that differs from the first
  // column is marked, so the eye goes where the records disagree.
  const rows = [];
  for (const [label, pick] of FIELDS) {
    const values = list.map((x) => fmt(pick(x.demographics || {})));
    if (values.every((s) => s === "")) continue;
    rows.push(
      el("tr", {},
        el("th", { scope: "row", text: label }),
        values.map((s, i) =>
          el("td", { class: i > 0 && s.toUpperCase() !== values[0].toUpperCase() ? "differs" : null, text: s }))),
    );
  }
  return rows;
}

function field(label, input) {
  const id = input.id || "f-" + label.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  input.id = id;
  return [el("label", { for: id, text: label }), input];
}

// --- chrome: navigation by role, who is logged in ---------------------------

function renderChrome() {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  nav.hidden = !session;
  who.hidden = !session;
  if (!session) return;
  document.getElementById("who-name").textContent = session.username + " (" + session.role + ")";
  for (const a of nav.querySelectorAll("a")) {
    a.hidden = !a.dataset.roles.split(" ").includes(session.role);
  }
  const route = location.hash.split("/")[1] || "";
  for (const a of nav.querySelectorAll("a")) {
    if (a.getAttribute("href") === "#/" + route) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function home() {
  if (!session) return "#/login";
  return session.role === "auditor" ? "#/audit" : "#/review";
}

// --- login ------------------------------------------------------------------

function renderLogin(message) {
  keyHandler = null;
  const username = el("input", { name: "username", autocomplete: "username", required: true });
  const password = el("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const code = el("input", {
    name: "code", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}",
    "aria-describedby": "code-help",
  });
  const form = el("form", { class: "stack", id: "login" },
    field("Username", username),
    field("Password", password),
    field("One-time code", code),
    el("span"), el("span", { id: "code-help", class: "muted", text: "Six digits from your authenticator app (administrators)." }),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", text: "Log in" })),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = { username: username.value, password: password.value };
      if (code.value.trim()) body.code = code.value.trim();
      session = await api("POST", "/session", body);
      say("Logged in as " + session.username + ".", "ok");
      const target = location.hash && location.hash !== "#/login" ? location.hash : home();
      if (location.hash === target) route();
      else location.hash = target;
    } catch (error) {
      failed(error);
      password.value = "";
      password.focus();
    }
  });
  show(el("h2", { text: "Log in" }), form);
  if (message) say(message, "error");
  username.focus();
}

async function logout() {
  try {
    await api("DELETE", "/session");
  } catch (_) {
    // The session may already be gone; the page forgets it either way.
  }
  session = null;
  renderChrome();
  location.hash = "#/login";
  say("Logged out.", "ok");
}

// --- the review queue -------------------------------------------------------

// The server filters by Authorized User over the whole queue and counts
// what waits (`waiting`); the page shows the oldest 500 of them. The
// filter's choices are the users seen in the queues loaded so far.
const review = { items: [], index: 0, filter: "", waiting: 0, users: new Set() };

function sourcesOf(item) {
  return (item.sources || []).map((s) => s.authorized_user || s.au).filter(Boolean);
}

async function renderReview() {
  say("");
  show(el("h2", { text: "Possible duplicates" }), el("p", { class: "muted", text: "Loading the queue…" }));
  let answer;
  try {
    const au = review.filter ? "&au=" + encodeURIComponent(review.filter) : "";
    answer = await api("GET", "/review?limit=500" + au);
  } catch (error) {
    return failed(error);
  }
  review.items = answer.queue || [];
  review.waiting = typeof answer.waiting === "number" ? answer.waiting : review.items.length;
  review.items.flatMap(sourcesOf).forEach((u) => review.users.add(u));
  review.index = 0;
  drawReview();
}

function drawReview() {
  const items = review.items;
  if (review.index >= items.length) review.index = Math.max(0, items.length - 1);
  const users = [...review.users].sort();
  const filter = el("select", { id: "review-filter" },
    el("option", { value: "", text: "All Authorized Users" }),
    users.map((u) => el("option", { value: u, selected: u === review.filter, text: u })));
  filter.addEventListener("change", () => {
    review.filter = filter.value;
    renderReview();
  });
  const shown = review.waiting > items.length ? " (the oldest " + items.length + " shown)" : "";
  const oldest = items.length ? age(items[0].person.created_at) : "";
  const header = el("div", { class: "bar" },
    el("h2", { text: "Possible duplicates: " + review.waiting + " waiting" + shown + (oldest ? ", oldest " + oldest : "") }),
    el("form", { class: "inline", onsubmit: (e) => e.preventDefault() },
      el("label", { for: "review-filter" }, "Authorized User", filter)),
    el("p", { class: "keys" },
      "Keys: ", el("kbd", { text: "j" }), "/", el("kbd", { text: "k" }), " next/previous, ",
      el("kbd", { text: "1" }), "–", el("kbd", { text: "9" }), " or ", el("kbd", { text: "m" }),
      " same person as candidate 1–9 (m: 1), ", el("kbd", { text: "d" }), " different people, ",
      el("kbd", { text: "r" }), " reason, ", el("kbd", { text: "o" }), " open the person's page"));
  if (!items.length) {
    keyHandler = null;
    show(header, el("p", { id: "queue-empty", text: "Nothing waiting for review." }));
    return;
  }
  const list = el("ol", { class: "queue", id: "queue", "aria-label": "Waiting persons, oldest first" },
    items.map((item, i) =>
      el("li", {},
        el("button", {
          type: "button", "aria-current": i === review.index ? "true" : "false",
          "data-person": item.person.id,
          onclick: () => { review.index = i; drawReview(); },
        },
        el("span", { class: "age", text: age(item.person.created_at) }),
        fmt(item.person.demographics && item.person.demographics.name) || item.person.id,
        el("br"),
        el("span", { class: "muted", text: fmt(item.person.demographics && item.person.demographics.birth_date) + " · " +
          (item.candidates || []).length + " candidate(s) · " + sourcesOf(item).join(", ") })))));
  keyHandler = reviewKeys;
  show(header, el("div", { class: "review" }, list, reviewItem(items[review.index])));
}

function reviewItem(item) {
  const candidates = item.candidates || [];
  const columns = [{ demographics: item.person.demographics }].concat(
    candidates.map((c) => ({ demographics: c.person ? c.person.demographics : {} })));
  const table = el("table", { id: "comparison" },
    el("caption", { class: "muted", text: "The waiting record beside each candidate; cells that differ from it are marked." }),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col", text: "Field" }),
      el("th", { scope: "col" }, "Waiting: ", el("a", { class: "id", href: "#/persons/" + item.person.id, text: item.person.id })),
      candidates.map((c, i) => el("th", { scope: "col" },
        "Candidate " + (i + 1) + ": ",
        c.person ? el("a", { class: "id", href: "#/persons/" + c.person.id, text: c.person.id }) : "(gone)",
        el("br"),
        el("span", { class: "grade-" + (item.person.certainty || "possible") },
          "score " + Number(c.score).toFixed(2)))))),
    el("tbody", {}, demographicsRows(columns)));
  const reason = el("input", { id: "decision-reason", name: "reason", maxlength: 1000 });
  const buttons = candidates.map((c, i) =>
    el("button", {
      type: "button", class: "primary", "data-decision": "same-person", "data-into": c.person && c.person.id,
      disabled: !c.person, onclick: () => decide(item, "same-person", c.person.id, reason.value),
    }, "Same person as candidate " + (i + 1) + " (" + (i + 1) + ")"));
  const decideBar = el("div", { class: "decide" },
    el("label", { for: "decision-reason" }, "Reason (kept with the decision)", reason),
    buttons,
    el("button", {
      type: "button", class: "danger", "data-decision": "different-people",
      onclick: () => decide(item, "different-people", null, reason.value),
    }, "Different people (d)"));
  const notes = (item.person.notes || []).map((n) => el("li", { text: n }));
  return el("section", { "aria-label": "Waiting record " + item.person.id },
    notes.length ? el("ul", { class: "muted" }, notes) : null,
    table,
    decideBar,
    candidates.map((c, i) => evidence(c, i, item.person.certainty)),
    el("h3", { text: "Source records of the waiting person" }),
    sourcesTable(item.sources || [], null));
}

function evidence(candidate, i, band) {
  const e = candidate.evidence || {};
  const fields = e.fields || [];
  const vetoes = e.vetoes || [];
  return el("details", { class: "evidence", open: i === 0 },
    el("summary", {}, "Evidence for candidate " + (i + 1) + ": score " + Number(candidate.score).toFixed(2) +
      (band ? ", band " + band : "") + (e.uncapped && e.uncapped !== band ? " (" + e.uncapped + " before vetoes)" : "") +
      (vetoes.length ? ", " + vetoes.length + " veto(es)" : "")),
    fields.length ? el("table", {},
      el("thead", {}, el("tr", {}, ["Field", "Level", "Weight"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, fields.map((f) =>
        el("tr", {}, el("td", { text: f.field || f.name || "" }), el("td", { text: fmt(f.level) }),
          el("td", { text: f.weight === undefined ? "" : Number(f.weight).toFixed(2) }))))) : null,
    vetoes.map((v) => el("p", { class: "veto", text: "Veto: " + String(v).replace(/_/g, " ") })));
}

async function decide(item, decision, into, reason) {
  const body = { decision, reason: reason || "" };
  if (into) body.into = into;
  try {
    await api("POST", "/review/" + encodeURIComponent(item.person.id), body);
    say(decision === "same-person"
      ? "Merged " + item.person.id + " into " + into + "."
      : "Kept " + item.person.id + " as a person of its own.", "ok");
  } catch (error) {
    failed(error);
    if (error.status !== 409) return;
    // Someone decided first: the item leaves the queue all the same.
  }
  review.items = review.items.filter((x) => x !== item);
  review.waiting = Math.max(0, review.waiting - 1);
  drawReview();
  const current = document.querySelector('#queue button[aria-current="true"]');
  if (current) current.focus();
}

function reviewKeys(event) {
  const items = review.items;
  const item = items[review.index];
  if (!item) return false;
  const key = event.key;
  if (key === "j" || key === "ArrowDown") {
    review.index = Math.min(items.length - 1, review.index + 1);
  } else if (key === "k" || key === "ArrowUp") {
    review.index = Math.max(0, review.index - 1);
  } else if (key === "m" || /^[1-9]$/.test(key)) {
    const n = key === "m" ? 0 : Number(key) - 1;
    const c = (item.candidates || [])[n];
    if (!c || !c.person) return false;
    decide(item, "same-person", c.person.id, document.getElementById("decision-reason").value);
    return true;
  } else if (key === "d") {
    decide(item, "different-people", null, document.getElementById("decision-reason").value);
    return true;
  } else if (key === "r") {
    document.getElementById("decision-reason").focus();
    return true;
  } else if (key === "o") {
    location.hash = "#/persons/" + item.person.id;
    return true;
  } else {
    return false;
  }
  drawReview();
  const current = document.querySelector('#queue button[aria-current="true"]');
  if (current) current.focus();
  return true;
}

// --- a person's page ----------------------------------------------------------

function sourcesTable(sources, onUnmerge) {
  return el("table", { class: "sources" },
    el("thead", {}, el("tr", {},
      ["Source record", "Authorized User", "Link", "Name", "Birth date", "Last message", ""].map((h) =>
        el("th", { scope: "col", text: h })))),
    el("tbody", {}, sources.map((s) =>
      el("tr", {},
        el("td", { text: s.id }),
        el("td", { text: s.authorized_user || s.au || "" }),
        el("td", { text: fmt(s.link) + (s.linked_from ? ", moved from " + s.linked_from : "") }),
        el("td", { text: fmt(s.demographics && s.demographics.name) }),
        el("td", { text: fmt(s.demographics && s.demographics.birth_date) }),
        el("td", { text: fmt(s.last_message) }),
        el("td", {}, onUnmerge && sources.length > 1
          ? el("button", { type: "button", class: "danger", "data-unmerge": s.id, onclick: () => onUnmerge(s) }, "Unmerge")
          : null)))));
}

function renderPersonSearch() {
  keyHandler = null;
  const id = el("input", { name: "person", required: true });
  const form = el("form", { class: "inline" },
    el("label", { for: "person-id" }, "Person id", id),
    el("button", { type: "submit", class: "primary", text: "Open" }));
  id.id = "person-id";
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = "#/persons/" + encodeURIComponent(id.value.trim());
  });
  show(el("h2", { text: "Persons" }),
    el("p", { class: "muted", text: "Open a person's page by its id (from the review queue, a Group or the audit trail)." }),
    form);
  id.focus();
}

async function renderPerson(id) {
  keyHandler = null;
  let page;
  try {
    page = await api("GET", "/persons/" + encodeURIComponent(id));
  } catch (error) {
    show(el("h2", { text: "Person " + id }));
    return failed(error);
  }
  const p = page.person;
  const unmerge = async (source) => {
    const reason = window.prompt("Why does source record " + source.id + " belong to another person?", "");
    if (reason === null) return;
    try {
      const answer = await api("POST", "/persons/" + encodeURIComponent(p.id) + "/unmerge", { source: source.id, reason });
      say("Source record " + source.id + " now has a person of its own: " + answer.person + ".", "ok");
      renderPerson(p.id);
    } catch (error) {
      failed(error);
    }
  };
  const history = page.immunizations || [];
  show(
    el("h2", {}, "Person " + p.id + " ", el("span", { class: "muted", text: "(" + fmt(p.status) + (p.merged_into ? " into " + p.merged_into : "") + ")" })),
    p.merged_into ? el("p", {}, "Merged into ", el("a", { href: "#/persons/" + p.merged_into, text: p.merged_into }), ".") : null,
    el("h3", { text: "Demographics" }),
    el("table", { id: "demographics" }, el("tbody", {}, demographicsRows([{ demographics: p.demographics }]))),
    el("h3", { text: "Source records and their links" }),
    sourcesTable(page.sources || [], unmerge),
    el("h3", { text: "Immunization history (" + history.length + " events)" }),
    historyTable(history),
    el("h3", { text: "Possible duplicates" }),
    (page.potential_duplicates || []).length
      ? el("ul", {}, page.potential_duplicates.map((d) =>
        el("li", {}, el("a", { href: "#/persons/" + d.other, text: d.other }), " score " + Number(d.score).toFixed(2))))
      : el("p", { class: "muted", text: "None." }),
    el("h3", { text: "Group memberships" }),
    (page.groups || []).length
      ? el("table", { id: "groups" },
        el("thead", {}, el("tr", {}, ["Group", "Member", "Since"].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, page.groups.map((g) => el("tr", {},
          el("td", { text: g.group }), el("td", { text: g.active ? "yes" : "removed" }), el("td", { text: when(g.at) })))))
      : el("p", { class: "muted", text: "In no Group." }));
}

function historyTable(history) {
  if (!history.length) return el("p", { class: "muted", text: "No vaccinations recorded." });
  return el("table", { id: "history" },
    el("thead", {}, el("tr", {}, ["Date", "Vaccine", "Kind", "Completion", "Reports behind the event", "Why this report speaks for it"].map((h) =>
      el("th", { scope: "col", text: h })))),
    el("tbody", {}, history.map((e) => {
      const o = e.order || {};
      return el("tr", {},
        el("td", { text: fmt(o.administered) }),
        el("td", { text: fmt(o.vaccine) }),
        el("td", { text: fmt(o.administration && o.administration.kind) }),
        el("td", { text: fmt(o.completion) }),
        el("td", { text: (e.sources || []).map((r) => r.au + " (" + r.source + ")").join("; ") }),
        el("td", { text: e.chosen || "" }));
    })));
}

// --- Authorized Users -------------------------------------------------------------

const AU_KINDS = ["clinic", "health-system", "pharmacy", "school", "payer", "health-department", "other"];

async function renderAuthorizedUsers() {
  keyHandler = null;
  let answer;
  try {
    answer = await api("GET", "/authorized-users");
  } catch (error) {
    show(el("h2", { text: "Authorized Users" }));
    return failed(error);
  }
  const inputs = {
    id: el("input", { name: "id", required: true, pattern: "[A-Za-z0-9._-]+" }),
    kind: el("select", { name: "kind" }, AU_KINDS.map((k) => el("option", { value: k, text: k }))),
    name: el("input", { name: "name", required: true }),
    facilities: el("input", { name: "facilities", required: true, "aria-describedby": "facilities-help" }),
    username: el("input", { name: "username", required: true, autocomplete: "off" }),
    password: el("input", { name: "password", type: "password", required: true, minlength: 12, autocomplete: "new-password" }),
  };
  const form = el("form", { class: "stack", id: "add-authorized-user" },
    field("Id", inputs.id), field("Kind", inputs.kind), field("Name", inputs.name),
    field("Facilities", inputs.facilities),
    el("span"), el("span", { id: "facilities-help", class: "muted", text: "Facility ids it sends in MSH-4, separated by commas." }),
    field("HL7 username", inputs.username), field("HL7 password", inputs.password),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", text: "Add Authorized User" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      id: inputs.id.value.trim(),
      kind: inputs.kind.value,
      name: inputs.name.value.trim(),
      facilities: inputs.facilities.value.split(",").map((f) => f.trim()).filter(Boolean),
      username: inputs.username.value.trim(),
      password: inputs.password.value,
    };
    try {
      const added = await api("POST", "/authorized-users", body);
      say("Added " + added.id + (added.group ? " with Group " + added.group : "") + ".", "ok");
      renderAuthorizedUsers();
    } catch (error) {
      failed(error);
    }
  });
  const users = answer.authorized_users || [];
  show(
    el("h2", { text: "Authorized Users (" + users.length + ")" }),
    el("table", { id: "authorized-users" },
      el("thead", {}, el("tr", {}, ["Id", "Kind", "Name", "Facilities", "HL7 username", "Group", "Added"].map((h) =>
        el("th", { scope: "col", text: h })))),
      el("tbody", {}, users.map((u) => el("tr", { "data-id": u.id },
        el("td", {}, el("a", { href: "#/authorized-users/" + encodeURIComponent(u.id), text: u.id })), el("td", { text: fmt(u.kind) }), el("td", { text: u.name }),
        el("td", { text: (u.facilities || []).join(", ") }), el("td", { text: u.username }),
        el("td", { text: fmt(u.group) }), el("td", { text: when(u.created_at) }))))),
    el("h3", { text: "Add an Authorized User" }),
    form);
}

// An Authorized User's page: its SMART Backend Services clients.
async function renderAuthorizedUser(id) {
  keyHandler = null;
  const path = "/authorized-users/" + encodeURIComponent(id) + "/clients";
  let answer;
  try {
    answer = await api("GET", path);
  } catch (error) {
    show(el("h2", { text: "Authorized User " + id }));
    return failed(error);
  }
  const clients = answer.clients || [];
  const jwks = el("textarea", { name: "jwks", rows: 5, cols: 60, "aria-describedby": "jwks-help" });
  const jwksUrl = el("input", { name: "jwks_url", type: "url", placeholder: "https://ehr.example/.well-known/jwks.json" });
  const scope = el("input", { name: "scope", value: "system/*.rs" });
  const form = el("form", { class: "stack", id: "add-client" },
    field("Public keys (JWKS)", jwks),
    el("span"), el("span", { id: "jwks-help", class: "muted", text: "Paste the client's public JWK Set, or give the URL where it publishes it." }),
    field("or JWKS URL", jwksUrl),
    field("Scope", scope),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", text: "Register client" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { scope: scope.value.trim() };
    if (jwks.value.trim()) body.jwks = jwks.value.trim();
    if (jwksUrl.value.trim()) body.jwks_url = jwksUrl.value.trim();
    try {
      const added = await api("POST", path, body);
      await renderAuthorizedUser(id);
      say("Registered client " + added.id + " (client_id) for " + id + ".", "ok");
    } catch (error) {
      failed(error);
    }
  });
  const rotate = async (client) => {
    const text = window.prompt("The new public JWKS for client " + client.id + ":", "");
    if (!text) return;
    try {
      await api("PUT", "/clients/" + encodeURIComponent(client.id) + "/jwks", { jwks: text });
      await renderAuthorizedUser(id);
      say("New keys for client " + client.id + ".", "ok");
    } catch (error) {
      failed(error);
    }
  };
  const remove = async (client) => {
    if (!window.confirm("Remove client " + client.id + "? It can no longer get tokens.")) return;
    try {
      await api("DELETE", "/clients/" + encodeURIComponent(client.id));
      await renderAuthorizedUser(id);
      say("Removed client " + client.id + ".", "ok");
    } catch (error) {
      failed(error);
    }
  };
  let au = null;
  try {
    au = ((await api("GET", "/authorized-users")).authorized_users || []).find((u) => u.id === id) || null;
  } catch (_) {
    // The clients above were readable; the Group section says what is missing.
  }
  show(
    el("h2", {}, "Authorized User " + id + " ", el("a", { href: "#/authorized-users", class: "muted", text: "(all)" })),
    au ? el("p", { class: "muted", text: au.name + " · " + fmt(au.kind) + " · facilities " + (au.facilities || []).join(", ") + " · HL7 login " + au.username }) : null,
    au ? editAuthorizedUser(au) : null,
    el("h3", { text: "SMART Backend Services clients (" + clients.length + ")" }),
    clients.length
      ? el("table", { id: "clients" },
        el("thead", {}, el("tr", {}, ["client_id", "Scope", "Keys", "Registered", ""].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, clients.map((c) => el("tr", { "data-id": c.id },
          el("td", { text: c.id }), el("td", { text: c.scope }),
          el("td", { text: c.jwks_url || (c.key_ids || []).join(", ") }),
          el("td", { text: when(c.created_at) }),
          el("td", {},
            el("button", { type: "button", onclick: () => rotate(c) }, "Rotate keys"), " ",
            el("button", { type: "button", class: "danger", onclick: () => remove(c) }, "Remove"))))))
      : el("p", { class: "muted", text: "No clients yet." }),
    el("section", { id: "group-section", "aria-label": "Group" }),
    el("h3", { text: "Register a client" }),
    form);
  if (au && au.group) await drawGroup(au.group, false);
  else fill(document.getElementById("group-section"), el("h3", { text: "Group" }), el("p", { class: "muted", text: "No Group (the policy gives this kind of Authorized User none)." }));
}

// Rename, facilities in and out, a login reset: one PATCH, all or nothing.
function editAuthorizedUser(au) {
  const name = el("input", { name: "name", value: au.name, required: true });
  const add = el("input", { name: "add_facilities", "aria-describedby": "add-facilities-help" });
  const removals = (au.facilities || []).map((f, i) =>
    el("label", { for: "remove-facility-" + i },
      el("input", { type: "checkbox", id: "remove-facility-" + i, value: f }), " " + f));
  const password = el("input", { name: "password", type: "password", minlength: 12, autocomplete: "new-password" });
  const form = el("form", { class: "stack", id: "edit-authorized-user" },
    field("Name", name),
    field("Add facilities", add),
    el("span"), el("span", { id: "add-facilities-help", class: "muted", text: "Facility ids, separated by commas." }),
    el("span", { text: "Stop accepting" }), el("div", {}, removals),
    field("New HL7 password", password),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", text: "Save changes" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    if (name.value.trim() && name.value.trim() !== au.name) body.name = name.value.trim();
    const added = add.value.split(",").map((f) => f.trim()).filter(Boolean);
    if (added.length) body.add_facilities = added;
    const removed = removals.map((l) => l.querySelector("input")).filter((c) => c.checked).map((c) => c.value);
    if (removed.length) body.remove_facilities = removed;
    if (password.value) body.password = password.value;
    try {
      await api("PATCH", "/authorized-users/" + encodeURIComponent(au.id), body);
      await renderAuthorizedUser(au.id);
      say("Saved the changes to " + au.id + ".", "ok");
    } catch (error) {
      failed(error);
    }
  });
  return el("details", { id: "edit-section" }, el("summary", { text: "Edit name, facilities or HL7 login" }), form);
}

// A Group's members with the evidence behind each; remove one, or reset all.
async function drawGroup(group, removedToo, after, rows) {
  const section = document.getElementById("group-section");
  if (!section) return;
  const q = new URLSearchParams({ limit: "100" });
  if (removedToo) q.set("removed", "true");
  if (after) q.set("after", after);
  let answer;
  try {
    answer = await api("GET", "/groups/" + encodeURIComponent(group) + "?" + q.toString());
  } catch (error) {
    return failed(error);
  }
  const all = (rows || []).concat(answer.members || []);
  // A client's own add says what relationship it rested on (a VXU, a query,
  // or the client's attestation).
  const evidence = (e) => e ? fmt(e.kind) + " " + e.message + " (" + fmt(e.certainty) + ", " + when(e.at) + ")" + (e.basis ? ": " + e.basis : "") : "";
  const remove = async (person) => {
    const reason = window.prompt("Why does person " + person + " leave this Group?", "");
    if (reason === null) return;
    try {
      await api("POST", "/groups/" + encodeURIComponent(group) + "/members/" + encodeURIComponent(person) + "/remove", { reason });
      say("Person " + person + " left Group " + group + ".", "ok");
      drawGroup(group, removedToo);
    } catch (error) {
      failed(error);
    }
  };
  const reset = async () => {
    const reason = window.prompt("Reset Group " + group + ": every member leaves. Why?", "");
    if (reason === null) return;
    try {
      const done = await api("POST", "/groups/" + encodeURIComponent(group) + "/reset", { reason });
      say("Group " + group + " reset: " + done.removed + " member(s) left.", "ok");
      drawGroup(group, removedToo);
    } catch (error) {
      failed(error);
    }
  };
  const toggle = el("input", { type: "checkbox", id: "group-removed", checked: removedToo });
  toggle.addEventListener("change", () => drawGroup(group, toggle.checked));
  fill(section,
    el("h3", { text: "Group " + group + ": " + answer.quantity + " member(s)" }),
    el("div", { class: "bar" },
      el("label", { for: "group-removed" }, toggle, " Show removed members"),
      el("button", { type: "button", class: "danger", id: "group-reset", onclick: reset }, "Reset Group")),
    all.length
      ? el("table", { id: "group-members" },
        el("thead", {}, el("tr", {}, ["Person", "Name", "Birth date", "Member since", "Added by", "Latest evidence", "Status", ""].map((h) =>
          el("th", { scope: "col", text: h })))),
        el("tbody", {}, all.map((row) => {
          const m = row.member;
          return el("tr", { "data-person": m.person },
            el("td", {}, el("a", { class: "id", href: "#/persons/" + encodeURIComponent(m.person), text: m.person })),
            el("td", { text: fmt(row.name) }),
            el("td", { text: fmt(row.birth_date) }),
            el("td", { text: when(m.added_at) }),
            el("td", { text: evidence(m.first) }),
            el("td", { text: JSON.stringify(m.latest) === JSON.stringify(m.first) ? "(the same)" : evidence(m.latest) }),
            el("td", { text: m.active ? "member" : "removed " + when(m.removed_at) + ": " + (m.removed_because || "") }),
            el("td", {}, m.active ? el("button", { type: "button", class: "danger", onclick: () => remove(m.person) }, "Remove") : null));
        })))
      : el("p", { class: "muted", text: "No members." }),
    answer.next
      ? el("button", { type: "button", onclick: () => drawGroup(group, removedToo, answer.next, all) }, "More members")
      : null);
}

// --- staff --------------------------------------------------------------------

async function renderStaff() {
  keyHandler = null;
  let answer;
  try {
    answer = await api("GET", "/staff");
  } catch (error) {
    show(el("h2", { text: "Staff" }));
    return failed(error);
  }
  const username = el("input", { name: "username", required: true, autocomplete: "off" });
  const role = el("select", { name: "role" }, ["reviewer", "administrator", "auditor"].map((r) => el("option", { value: r, text: r })));
  const password = el("input", { name: "password", type: "password", required: true, minlength: 12, autocomplete: "new-password" });
  const enrolment = el("div", { id: "enrolment" });
  const form = el("form", { class: "stack", id: "add-staff" },
    field("Username", username), field("Role", role), field("Password", password),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary", text: "Add staff member" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const added = await api("POST", "/staff", { username: username.value.trim(), role: role.value, password: password.value });
      await renderStaff();
      say("Added " + added.username + " (" + added.role + ").", "ok");
      if (added.totp_uri) {
        fill(document.getElementById("enrolment"),
          el("p", { text: "Shown once: give this enrolment URI to " + added.username + " for an authenticator app." }),
          el("p", { class: "secret", text: added.totp_uri }));
      }
    } catch (error) {
      failed(error);
    }
  });
  const staff = answer.staff || [];
  show(
    el("h2", { text: "Staff (" + staff.length + ")" }),
    el("table", { id: "staff" },
      el("thead", {}, el("tr", {}, ["Username", "Role", "Second factor", "Added"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, staff.map((s) => el("tr", {},
        el("td", { text: s.username }), el("td", { text: fmt(s.role) }),
        el("td", { text: s.second_factor ? "yes" : "no" }), el("td", { text: when(s.created_at) }))))),
    enrolment,
    el("h3", { text: "Add a staff member" }),
    form);
}

// --- audit --------------------------------------------------------------------

async function renderAudit(query) {
  keyHandler = null;
  const params = new URLSearchParams(query || "");
  const inputs = {
    actor: el("input", { name: "actor", placeholder: "staff/rita", value: params.get("actor") || "" }),
    subject: el("input", { name: "subject", placeholder: "Person/…", value: params.get("subject") || "" }),
    from: el("input", { name: "from", type: "date", value: params.get("from") || "" }),
    to: el("input", { name: "to", type: "date", value: params.get("to") || "" }),
  };
  const form = el("form", { class: "inline", id: "audit-search" },
    Object.entries(inputs).map(([name, input]) => {
      input.id = "audit-" + name;
      return el("label", { for: input.id }, name === "actor" ? "Actor (kind/id)" : name === "subject" ? "Subject (Type/id)" : name === "from" ? "From (UTC day)" : "To (UTC day)", input);
    }),
    el("button", { type: "submit", class: "primary", text: "Search" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const [name, input] of Object.entries(inputs)) if (input.value.trim()) q.set(name, input.value.trim());
    location.hash = "#/audit?" + q.toString();
  });
  const results = el("div", { id: "audit-results" }, el("p", { class: "muted", text: "Searching…" }));
  const exportLink = el("a", {
    id: "audit-export", download: "",
    href: API + "/audit/export" + (params.toString() ? "?" + params.toString() : ""),
  }, "Export these events as FHIR AuditEvent NDJSON");
  show(el("h2", { text: "Audit trail" }), form, el("p", {}, exportLink), results);
  try {
    const answer = await api("GET", "/audit" + (params.toString() ? "?" + params.toString() : ""));
    const events = answer.events || [];
    fill(results,
      el("p", { class: "muted", text: events.length + " event(s), newest first." }),
      el("table", { id: "audit" },
        el("thead", {}, el("tr", {}, ["When", "Who", "Action", "Subjects", "Outcome", "From", "Detail"].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, events.map((e) => el("tr", {},
          el("td", { text: when(e.at_ms) }),
          el("td", { text: fmt(e.actor && e.actor.kind) + "/" + fmt(e.actor && e.actor.id) }),
          el("td", { text: e.action }),
          el("td", { text: (e.subjects || []).join(", ") }),
          el("td", { class: "outcome-" + fmt(e.outcome), text: fmt(e.outcome) }),
          el("td", { text: e.source || "" }),
          el("td", { text: e.detail || "" }))))));
  } catch (error) {
    fill(results);
    failed(error);
  }
}

// --- routing ------------------------------------------------------------------

async function route() {
  const hash = location.hash || "";
  const [path, query] = hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  if (!session) {
    try {
      session = await api("GET", "/session");
    } catch (_) {
      session = null;
    }
  }
  renderChrome();
  if (!session) return renderLogin();
  if (!parts.length || parts[0] === "login") {
    location.hash = home();
    return;
  }
  say("");
  switch (parts[0]) {
    case "review": return renderReview();
    case "persons": return parts[1] ? renderPerson(decodeURIComponent(parts[1])) : renderPersonSearch();
    case "authorized-users": return parts[1] ? renderAuthorizedUser(decodeURIComponent(parts[1])) : renderAuthorizedUsers();
    case "staff": return renderStaff();
    case "audit": return renderAudit(query);
    default:
      show(el("h2", { text: "Not found" }), el("p", {}, "No such page. ", el("a", { href: home(), text: "Go back" }), "."));
  }
}

document.addEventListener("keydown", (event) => {
  if (!keyHandler || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target && ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) {
    if (event.key === "Escape") target.blur();
    return;
  }
  if (keyHandler(event)) event.preventDefault();
});

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", logout);
  route();
});
