// The Gotthard admin status page: reads status.json every second and shows it.
// A bearer token, if the admin service needs one, comes in the URL fragment
// (#token=...), which the browser never sends to any server; it is kept for the tab
// in sessionStorage and taken out of the address bar.
"use strict";

(function () {
  const TOKEN_KEY = "gotthard-admin-token";
  const PERIOD_MS = 1000;

  function readToken() {
    const params = new URLSearchParams(location.hash.slice(1));
    const t = params.get("token");
    if (t) {
      try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* storage off */ }
      params.delete("token");
      const rest = params.toString();
      history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
      return t;
    }
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }
  const token = readToken();

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // cell makes a td for one field: data-field names it, data-value holds the raw
  // value, the text is its human form.
  function cell(field, value, text, cls) {
    const td = el("td", { "data-field": field, "data-value": String(value) }, text === undefined ? String(value) : text);
    if (typeof value === "number") td.classList.add("num"); else td.classList.add("text");
    if (cls) td.classList.add(cls);
    return td;
  }

  function fixed(n, digits) { return Number(n).toFixed(digits); }
  function ms(n) { return n >= 100 ? fixed(n, 0) : n >= 10 ? fixed(n, 1) : fixed(n, 2); }
  function pct(n) { return fixed(n * 100, 1) + "%"; }

  function duration(s) {
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + "d " + h + "h " + m + "m";
    if (h) return h + "h " + m + "m " + (s % 60) + "s";
    if (m) return m + "m " + (s % 60) + "s";
    return (s % 60) + "s";
  }

  function fill(tableId, rows) {
    const tbody = document.querySelector("#" + tableId + " tbody");
    tbody.replaceChildren(...rows);
    document.getElementById(tableId + "-empty").hidden = rows.length > 0;
  }

  function classes(by) {
    return ["1xx", "2xx", "3xx", "4xx", "5xx", "other"]
      .filter(k => by && by[k]).map(k => k + " " + by[k]).join(" · ") || "–";
  }

  function renderServices(services) {
    fill("services", services.map(s => {
      const tr = el("tr", { "data-service": s.name });
      tr.append(
        cell("name", s.name),
        cell("listeners", s.listeners.join(" "), s.listeners.join(" ") || "–"),
        cell("rps_10s", s.rps_10s, fixed(s.rps_10s, 1)),
        cell("rps_1m", s.rps_1m, fixed(s.rps_1m, 1)),
        cell("error_rate_1m", s.error_rate_1m, pct(s.error_rate_1m), s.error_rate_1m > 0.01 ? "bad" : ""),
        cell("p50_ms", s.p50_ms, ms(s.p50_ms)),
        cell("p90_ms", s.p90_ms, ms(s.p90_ms)),
        cell("p99_ms", s.p99_ms, ms(s.p99_ms)),
        cell("in_flight", s.in_flight),
        cell("connections", s.connections),
        cell("requests_total", s.requests_total),
        cell("by_class", JSON.stringify(s.by_class), classes(s.by_class)),
        cell("errors_total", s.errors_total, String(s.errors_total), s.errors_total ? "bad" : ""),
        cell("reuse_ratio", s.reuse_ratio, s.attempts_reused + s.attempts_new ? pct(s.reuse_ratio) : "–"),
        cell("retries_total", s.retries_total),
      );
      return tr;
    }));
  }

  function renderBackends(balancers) {
    const rows = [];
    for (const b of balancers) {
      for (const be of b.backends) {
        const health = be.ejected ? "ejected" : be.healthy ? "healthy" : "down";
        const tr = el("tr", { "data-balancer": b.name, "data-backend": be.addr });
        tr.append(
          cell("balancer", b.name),
          cell("addr", be.addr),
          cell("weight", be.weight),
          cell("health", health, health, health === "healthy" ? "ok" : "bad"),
          cell("available", be.available, be.available ? "yes" : "no", be.available ? "ok" : "bad"),
          cell("in_flight", be.in_flight),
          cell("ewma_ms", be.ewma_ms, ms(be.ewma_ms)),
        );
        rows.push(tr);
      }
    }
    fill("backends", rows);
  }

  function renderHealthEvents(events) {
    fill("health-events", events.map((h, i) => {
      const tr = el("tr", { "data-health-event": String(i), "data-backend": h.backend });
      const health = h.available ? "available" : h.healthy ? "unavailable" : h.cause === "ejection" ? "ejected" : "down";
      tr.append(
        cell("time", h.time, new Date(h.time).toLocaleTimeString()),
        cell("balancer", h.balancer),
        cell("backend", h.backend),
        cell("cause", h.cause),
        cell("health", health, health, h.available ? "ok" : "bad"),
        cell("error", h.error || "", h.error || "–"),
      );
      return tr;
    }));
  }

  function renderCertificates(certs) {
    fill("certificates", certs.map((c, i) => {
      const tr = el("tr", { "data-certificate": String(i), "data-source": c.source });
      const cls = c.error || c.days_left < 0 ? "bad" : c.days_left < 14 ? "warn" : "ok";
      tr.append(
        cell("source", c.source),
        cell("subject_cn", c.subject_cn, c.subject_cn || "–"),
        cell("sans", c.sans.join(" "), c.sans.join(" ") || "–"),
        cell("issuer", c.issuer, c.issuer || "–"),
        cell("not_after", c.not_after, c.error ? c.error : c.not_after.replace("T", " ").replace(/\.\d+/, "")),
        cell("days_left", c.days_left, c.error ? "–" : fixed(c.days_left, 1), cls),
      );
      return tr;
    }));
  }

  function renderVersion(v) {
    const set = (f, text) => {
      const dd = document.querySelector('#version [data-field="' + f + '"]');
      dd.textContent = text || "–";
      dd.dataset.value = text || "";
    };
    set("program", v.program);
    set("version", v.version);
    set("gotthard", v.gotthard);
    set("go_version", v.go_version);
    set("vcs_revision", v.vcs_revision + (v.vcs_modified ? " (modified)" : ""));
    set("vcs_time", v.vcs_time);
    set("platform", v.os + "/" + v.arch);
  }

  function render(st) {
    renderServices(st.services);
    renderBackends(st.balancers);
    renderHealthEvents(st.health_events || []);
    renderCertificates(st.certificates);
    renderVersion(st.version);
    const up = document.getElementById("uptime");
    up.textContent = duration(st.uptime_seconds);
    up.dataset.value = String(st.uptime_seconds);
    const gen = document.getElementById("generated-at");
    gen.textContent = new Date(st.generated_at).toLocaleTimeString();
    gen.dataset.value = st.generated_at;
    // Set last, so that a reader that waits on it finds the rest in place.
    document.body.dataset.generatedAt = st.generated_at;
    document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
  }

  function state(s, text) {
    const e = document.getElementById("conn-state");
    e.dataset.state = s;
    e.textContent = text;
  }

  async function poll() {
    try {
      const headers = token ? { Authorization: "Bearer " + token } : {};
      const resp = await fetch("status.json", { headers, cache: "no-store", credentials: "omit" });
      if (resp.status === 401) {
        state("error", "unauthorized: open this page as …/#token=TOKEN");
      } else if (!resp.ok) {
        state("error", "status.json: " + resp.status + " " + resp.statusText);
      } else {
        render(await resp.json());
        state("live", "live");
      }
    } catch (e) {
      state("error", "cannot reach the admin service: " + e.message);
    }
    setTimeout(poll, PERIOD_MS);
  }
  poll();
})();
