// The Verification tab's content. Locust adds the tab itself (template_args "extended_tabs"); this
// script fills it while it is selected: it polls ./tracedrill/verification (relayed by the Locust
// plugin to the tracedrill harness on loopback) every second, so the tab keeps updating after the
// test stopped, which is when verification runs. "Verify now" posts ./tracedrill/verify.
(function () {
  "use strict";

  const TAB_TITLE = "Verification";
  const POLL_MS = 1000;
  const STATES = ["pending", "pass", "fail", "unverifiable", "timed-out"];
  const panel = document.createElement("section");
  panel.id = "tracedrill-verification";
  panel.className = "td-verification";
  panel.hidden = true;
  let lastJson = "";
  let busy = false;

  const esc = (value) =>
    String(value === null || value === undefined ? "" : value).replace(
      /[&<>"']/g,
      (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
    );
  const num = (value) => (value === null || value === undefined ? "–" : esc(value));
  const stateClass = (state) => "td-state td-" + (STATES.includes(state) ? state : "other");
  const badge = (state) => `<span class="${stateClass(state)}" data-state="${esc(state)}">${esc(state)}</span>`;

  function selectedTab() {
    const tab = document.querySelector('[role="tab"][aria-selected="true"]');
    return tab ? tab.textContent.trim() : null;
  }

  function tabContainer() {
    const tabs = document.querySelector('[role="tablist"]');
    return tabs ? tabs.closest(".MuiContainer-root") : null;
  }

  function headline(s) {
    if (s.phase === "unreachable") return `<span class="td-state td-fail">harness unreachable</span> ${esc(s.error)}`;
    if (!s.round) return "No verification yet: it starts when a test stops, or on Verify now.";
    const why = s.reason === "verify-now" ? "Verify now" : "test stopped";
    const end = s.finished_at || s.now;
    const secs = s.started_at ? Math.max(0, Math.round(end - s.started_at)) : 0;
    if (s.phase === "verifying") {
      return `<span class="td-state td-pending">verifying</span> round ${s.round} (${why}), ${secs}s so far` +
        ` — ${num(s.sent)} requests sent, settle ${s.settings.settle_s}s, deadline ${s.settings.deadline_s}s`;
    }
    if (s.phase === "error") return `<span class="td-state td-fail">error</span> round ${s.round}: ${esc(s.error)}`;
    return `verdict <span class="${stateClass(s.verdict)} td-verdict" data-verdict="${esc(s.verdict)}">` +
      `${esc(String(s.verdict).toUpperCase())}</span> round ${s.round} (${why}), ${secs}s — ${num(s.sent)} requests sent`;
  }

  function backendsTable(rows) {
    const body = rows
      .map(
        (r) => `<tr data-backend="${esc(r.backend)}" data-state="${esc(r.state)}">
          <td>${esc(r.backend)}</td><td>${badge(r.state)}</td><td class="td-n">${num(r.expected)}</td>
          <td class="td-n">${num(r.found)}</td><td class="td-n">${num(r.missing)}</td><td class="td-n">${num(r.extra)}</td>
          <td class="td-nowrap">${esc(r.waited)}</td><td>${esc(r.note || r.progress)}</td></tr>`,
      )
      .join("");
    return `<table class="td-table" id="td-backends"><thead><tr><th>Backend</th><th>State</th><th>Expected</th>
      <th>Found</th><th>Missing</th><th>Extra</th><th>Waited</th><th>Progress / note</th></tr></thead>
      <tbody>${body}</tbody></table>`;
  }

  function checksTable(checks) {
    if (!checks.length) return `<p class="td-muted">Checks appear as soon as a backend has been read.</p>`;
    const body = checks
      .map(
        (c) => `<tr data-backend="${esc(c.backend)}" data-state="${esc(c.state)}"><td>${esc(c.backend)}</td>
          <td>${esc(c.name)}</td><td>${badge(c.state)}</td><td class="td-detail">${esc(c.detail)}</td></tr>`,
      )
      .join("");
    return `<table class="td-table" id="td-checks"><thead><tr><th>Backend</th><th>Check</th><th>State</th>
      <th>Detail</th></tr></thead><tbody>${body}</tbody></table>`;
  }

  // Sampling and budget come from summary.json as their producers wrote them: shown as nested key/values.
  function value(v, depth) {
    if (v === null || v === undefined) return "–";
    if (typeof v !== "object") return STATES.includes(v) ? badge(v) : esc(v);
    if (depth > 3) return `<code>${esc(JSON.stringify(v))}</code>`;
    const entries = Array.isArray(v) ? v.map((x, i) => [i + 1, x]) : Object.entries(v);
    if (!entries.length) return "–";
    return `<table class="td-kv">${entries
      .map(([k, x]) => `<tr><th>${esc(k)}</th><td>${value(x, depth + 1)}</td></tr>`)
      .join("")}</table>`;
  }

  // One row per sampler section that carries a verdict (X-Ray's rule check, OTel's exact head sampling).
  function samplingSection(s) {
    const sampling = s.sampling;
    if (sampling !== null && typeof sampling === "object") {
      const parts = Object.entries(sampling).filter(([, v]) => v && typeof v === "object" && "verdict" in v);
      if (!parts.length) return value(sampling, 0);
      const rows = parts
        .map(
          ([name, v]) => `<tr data-sampling="${esc(name)}" data-state="${esc(v.verdict)}"><td>${esc(name)}</td>
            <td>${badge(v.verdict)}</td><td class="td-n">${amount(v.observed)}</td><td>${expectedText(v)}</td>
            <td class="td-detail">${esc(v.reason || v.mode || configuredText(v.configured))}</td></tr>`,
        )
        .join("");
      const scalars = Object.entries(sampling).filter(([, v]) => v === null || typeof v !== "object");
      const extra = scalars.map(([k, v]) => `${esc(k)} ${esc(v)}`).join(", ");
      return `<table class="td-table" id="td-sampling-table"><thead><tr><th>Sampler</th><th>Verdict</th>
        <th>Observed</th><th>Expected</th><th>How</th></tr></thead><tbody>${rows}</tbody></table>
        ${extra ? `<p class="td-muted">${extra}</p>` : ""}`;
    }
    const checks = (s.checks || []).filter((c) => /\bsampling\b/i.test(c.name));
    if (checks.length) {
      return `<ul class="td-list">${checks
        .map((c) => `<li>${badge(c.state)} ${esc(c.backend)}: ${esc(c.name)}</li>`)
        .join("")}</ul>`;
    }
    return `<p class="td-muted">${s.phase === "done" ? "This run reported no sampling verdict." : "Shown when verification ends."}</p>`;
  }

  function expectedText(v) {
    const range = Array.isArray(v.interval) ? ` (accepted ${amount(v.interval[0])}–${amount(v.interval[1])})` : "";
    return `${amount(v.expected)}${range}`;
  }

  function configuredText(c) {
    if (!c || typeof c !== "object") return "";
    if (c.sampler) return `${c.sampler}${c.arg !== undefined && c.arg !== null ? " " + c.arg : ""}`;
    if (Array.isArray(c.rules)) return `${c.mode || ""} rules: ${c.rules.map((r) => r.name).join(", ")}`;
    return "";
  }

  const amount = (v) => (typeof v === "number" ? esc(v.toLocaleString("en-US", { maximumFractionDigits: 2 })) : num(v));

  // The budget ledger's allowances as one row each; any other shape is shown as key/values.
  function budgetSection(s) {
    const allowances = s.budget && Array.isArray(s.budget.allowances) ? s.budget.allowances : null;
    if (allowances && allowances.length) {
      const rows = allowances
        .map(
          (a) => `<tr><td>${esc(a.backend)} ${esc(a.label || a.name)}</td><td class="td-n">${amount(a.this_run)}</td>
            <td class="td-n">${amount(a.month_to_date)}</td><td class="td-n">${amount(a.limit)} ${esc(a.unit)}</td>
            <td class="td-n">${typeof a.used_fraction === "number" ? esc((a.used_fraction * 100).toPrecision(2)) + "%" : "–"}</td></tr>`,
        )
        .join("");
      const where = [s.budget.mode, s.budget.month].filter(Boolean).map(esc).join(", ");
      return `<table class="td-table" id="td-allowances"><thead><tr><th>Allowance ${where ? "(" + where + ")" : ""}</th>
        <th>This run</th><th>Month to date</th><th>Free tier</th><th>Used</th></tr></thead><tbody>${rows}</tbody></table>`;
    }
    if (s.budget !== null && s.budget !== undefined) return value(s.budget, 0);
    return `<p class="td-muted">${s.phase === "done" ? "This run reported no budget usage." : "Shown when verification ends."}</p>`;
  }

  function render(s) {
    const verifying = s.phase === "verifying";
    panel.dataset.phase = s.phase || "";
    panel.dataset.round = s.round || 0;
    panel.innerHTML = `
      <div class="td-head">
        <h2>Verification</h2>
        <button type="button" id="td-verify-now" class="td-button" ${verifying || busy ? "disabled" : ""}>Verify now</button>
      </div>
      <p id="td-headline" class="td-headline">${headline(s)}</p>
      <h3>Backends</h3>${backendsTable(s.backends || [])}
      <div class="td-columns">
        <div><h3>Sampling</h3><div id="td-sampling">${samplingSection(s)}</div></div>
        <div><h3>Budget usage</h3><div id="td-budget">${budgetSection(s)}</div></div>
      </div>
      <h3>Checks</h3>${checksTable(s.checks || [])}`;
    panel.querySelector("#td-verify-now").addEventListener("click", verifyNow);
  }

  async function verifyNow() {
    busy = true;
    lastJson = "";
    try {
      await fetch("./tracedrill/verify", { method: "POST", credentials: "include" });
    } finally {
      busy = false;
      refresh();
    }
  }

  async function refresh() {
    let status;
    try {
      const response = await fetch("./tracedrill/verification", { credentials: "include", cache: "no-store" });
      status = await response.json();
    } catch (error) {
      status = { phase: "unreachable", error: String(error) };
    }
    const json = JSON.stringify({ ...status, now: status.phase === "verifying" ? status.now : 0 });
    if (json !== lastJson) {
      lastJson = json;
      render(status);
    }
  }

  async function tick() {
    const container = tabContainer();
    if (container && selectedTab() === TAB_TITLE) {
      if (panel.parentNode !== container) container.appendChild(panel);
      panel.hidden = false;
      await refresh();
    } else {
      panel.hidden = true;
      lastJson = "";
    }
  }

  async function loop() {
    try {
      await tick();
    } finally {
      window.setTimeout(loop, POLL_MS);
    }
  }

  // React re-renders the tab bar on selection: show or hide the panel at once, not on the next tick.
  document.addEventListener("click", (event) => {
    if (event.target instanceof Element && event.target.closest('[role="tab"]')) window.setTimeout(tick, 0);
  });
  loop();
})();
