// The evaluation report page (ava_detect/evaluation/html_report.py): renders the JSON in #report-data.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const KINDS = D.fp_kinds;
  const byId = new Map(D.classes.map(c => [c.id, c]));
  const $ = (sel, root) => (root || document).querySelector(sel);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  };
  const pct = x => (x == null ? "n/a" : (100 * x).toFixed(2));
  const num = x => (x == null ? "n/a" : x.toLocaleString("en-US"));
  const fix = (x, d) => (x == null ? "n/a" : x.toFixed(d));
  const name = id => (byId.has(id) ? byId.get(id).name : String(id));
  let selected = null;

  // ------------------------------------------------------------------ headline
  function headline() {
    const h = D.headline;
    const cards = $("#cards");
    const add = (k, v, title) => cards.append(el("div", {class: "card", title: title || ""},
      el("div", {class: "v", text: v}), el("div", {class: "k", text: k})));
    if (h.official_60 != null) add("official 60-class frame-mAP", pct(h.official_60), "the ActivityNet challenge number");
    add(`frame-mAP, ${h.num_classes} classes`, pct(h.map), `mean AP over the ${h.num_evaluated} classes with ground truth`);
    for (const [t, v] of Object.entries(h.type_map)) add(`mAP ${t}`, pct(v));
    add("keyframes with ground truth", num(h.num_keyframes));
    add("ground-truth people (boxes)", num(h.num_persons));
    add("detections evaluated", num(h.num_detections));
    const files = $("#files");
    for (const [k, v] of Object.entries(D.files)) if (v) files.append(el("div", {}, `${k}: `, el("code", {text: v})));
    for (const w of D.warnings) $("#warnings").append(el("div", {class: "warn", text: w}));
  }

  // ------------------------------------------------------------------ sortable tables
  function sortable(table, rows, columns, onRow, initial) {
    const tbody = table.querySelector("tbody");
    const head = el("tr");
    let state = initial;
    columns.forEach((col, i) => {
      const th = el("th", {class: (col.cls || "") + (col.key ? " sortable" : ""), "data-key": col.key || "", text: col.label});
      if (col.title) th.title = col.title;
      if (col.key) th.addEventListener("click", () => {
        state = {key: col.key, dir: state.key === col.key ? -state.dir : (col.first || -1)};
        render();
      });
      head.append(th);
    });
    table.querySelector("thead").append(head);
    function render() {
      const k = state.key, dir = state.dir;
      const sorted = rows.slice().sort((a, b) => {
        const x = a[k], y = b[k];
        if (x == null && y == null) return 0;
        if (x == null) return 1;            // missing values last, whatever the direction
        if (y == null) return -1;
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
      tbody.replaceChildren(...sorted.map(r => {
        const tr = el("tr", {"data-id": String(r.id)});
        for (const col of columns) tr.append(el("td", {class: col.cls || ""}, col.cell(r)));
        if (onRow) tr.addEventListener("click", () => onRow(r));
        return tr;
      }));
      for (const th of head.children) {
        th.classList.remove("asc", "desc");
        if (th.dataset.key === k) th.classList.add(dir > 0 ? "asc" : "desc");
      }
      if (selected != null && table.id === "classes") markRow();
    }
    render();
    return render;
  }

  function kindsBar(c) {
    const total = KINDS.reduce((s, k) => s + c.fp_kinds[k], 0);
    const bar = el("span", {class: "kinds", title: KINDS.map(k => `${k}: ${c.fp_kinds[k]}`).join(", ")});
    KINDS.forEach((k, i) => { if (total) bar.append(el("span", {class: "k" + i, style: `width:${100 * c.fp_kinds[k] / total}%`})); });
    return bar;
  }

  function classTable() {
    const only60 = $("#only60");
    const cols = [
      {key: "id", label: "id", first: 1, cell: c => String(c.id)},
      {key: "name", label: "action", cls: "name", first: 1, cell: c => (c.official ? "\u2605 " : "") + c.name},
      {key: "type", label: "type", cls: "name hide-narrow", first: 1, cell: c => c.type || ""},
      {key: "ap", label: "AP", title: "average precision at IoU 0.5, %", cell: c => {
        const s = el("span", {}, el("span", {class: "bar", style: `width:${c.ap == null ? 0 : 60 * c.ap}px`}), " " + pct(c.ap));
        return s; }},
      {key: "gt", label: "GT", title: "ground-truth boxes", cell: c => num(c.gt)},
      {key: "det", label: "detections", cell: c => num(c.det)},
      {key: "tp", label: "TP", cls: "hide-narrow", title: "true positives", cell: c => num(c.tp)},
      {key: "f1", label: "best F1", cell: c => fix(c.f1, 3)},
      {key: "thr", label: "threshold", title: "score threshold with the best F1 (keep scores >= it)", cell: c => fix(c.thr, 3)},
      {key: "p", label: "P", cls: "hide-narrow", title: "precision at that threshold", cell: c => fix(c.p, 3)},
      {key: "r", label: "R", cls: "hide-narrow", title: "recall at that threshold", cell: c => fix(c.r, 3)},
      {key: "fp_total", label: "false positives in top N", cls: "name hide-narrow",
       title: "kinds of false positive among the class's N highest-scoring detections (N = its ground-truth count)",
       cell: c => kindsBar(c)},
    ];
    for (const c of D.classes) c.fp_total = KINDS.reduce((s, k) => s + c.fp_kinds[k], 0);
    const rows = () => D.classes.filter(c => !only60.checked || c.official);
    let render = sortable($("#classes"), rows(), cols, c => select(c.id, true), {key: "id", dir: 1});
    only60.addEventListener("change", () => {
      $("#classes thead").replaceChildren();
      render = sortable($("#classes"), rows(), cols, c => select(c.id, true), {key: "id", dir: 1});
    });
  }

  function markRow() {
    for (const tr of document.querySelectorAll("#classes tbody tr")) tr.classList.toggle("selected", tr.dataset.id === String(selected));
  }

  // ------------------------------------------------------------------ precision-recall charts
  const NS = "http://www.w3.org/2000/svg";
  const svgEl = (tag, attrs) => { const e = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
  const W = 360, H = 300, L = 40, B = 34, T = 10, R = 10;
  const sx = r => L + r * (W - L - R), sy = p => H - B - p * (H - B - T);
  function axes(svg, title) {
    for (let i = 0; i <= 10; i += 2) {
      const v = i / 10;
      svg.append(svgEl("line", {class: "grid", x1: sx(v), x2: sx(v), y1: sy(0), y2: sy(1)}));
      svg.append(svgEl("line", {class: "grid", x1: sx(0), x2: sx(1), y1: sy(v), y2: sy(v)}));
      const tx = svgEl("text", {class: "tick", x: sx(v), y: H - B + 13, "text-anchor": "middle"}); tx.textContent = v.toFixed(1); svg.append(tx);
      const ty = svgEl("text", {class: "tick", x: L - 4, y: sy(v) + 3, "text-anchor": "end"}); ty.textContent = v.toFixed(1); svg.append(ty);
    }
    svg.append(svgEl("line", {class: "axis", x1: sx(0), x2: sx(1), y1: sy(0), y2: sy(0)}));
    svg.append(svgEl("line", {class: "axis", x1: sx(0), x2: sx(0), y1: sy(0), y2: sy(1)}));
    const xl = svgEl("text", {class: "tick", x: sx(0.5), y: H - 4, "text-anchor": "middle"}); xl.textContent = "recall"; svg.append(xl);
    const yl = svgEl("text", {class: "tick", x: 10, y: sy(0.5), transform: `rotate(-90 10 ${sy(0.5)})`, "text-anchor": "middle"});
    yl.textContent = "precision"; svg.append(yl);
    if (title) { const t = svgEl("text", {class: "tick", x: sx(1), y: sy(1) + 12, "text-anchor": "end"}); t.textContent = title; svg.append(t); }
  }
  function envelopePoints(c) {
    const [r, p] = c.curve;
    const env = p.slice();
    for (let i = env.length - 2; i >= 0; i--) env[i] = Math.max(env[i], env[i + 1]);
    const pts = [[0, env.length ? env[0] : 0]];
    for (let i = 0; i < r.length; i++) pts.push([r[i], env[i]]);
    if (r.length) pts.push([r[r.length - 1], 0]);
    return pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
  }
  function allCurves() {
    const svg = $("#allcurves");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    axes(svg, "all classes");
    for (const c of D.classes) {
      if (c.ap == null) continue;
      const line = svgEl("polyline", {class: "curve" + (c.official ? " official" : ""), "data-id": String(c.id), points: envelopePoints(c)});
      const t = svgEl("title", {}); t.textContent = `${c.name}: AP ${pct(c.ap)}`; line.append(t);
      line.addEventListener("click", () => select(c.id, true));
      svg.append(line);
    }
  }
  function classCurve(c) {
    const svg = $("#classcurve");
    svg.replaceChildren();
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    axes(svg, `${c.name}: AP ${pct(c.ap)}`);
    if (c.ap == null) return;
    svg.append(svgEl("polyline", {class: "curve selected", points: envelopePoints(c)}));
    if (c.p != null) {
      svg.append(svgEl("circle", {cx: sx(c.r), cy: sy(c.p), r: 5, fill: "#d73027"}));
      const t = svgEl("text", {class: "tick", x: sx(0.02), y: sy(0.04), "text-anchor": "start"});
      t.textContent = `best F1 ${c.f1.toFixed(3)} at score >= ${c.thr.toFixed(3)}`; svg.append(t);
    }
  }

  // ------------------------------------------------------------------ examples
  function boxDiv(kind, box, label) {
    const [x1, y1, x2, y2] = box;
    const d = el("div", {class: "box " + kind,
      style: `left:${100 * x1}%;top:${100 * y1}%;width:${100 * (x2 - x1)}%;height:${100 * (y2 - y1)}%`});
    d.append(el("span", {class: "tag", text: label}));
    return d;
  }
  function exampleCard(ex, c) {
    const thumb = D.thumbs[ex.key];
    const ratio = thumb ? thumb.h / thumb.w : D.default_aspect;
    const frame = el("div", {class: "frame", style: `padding-top:${100 * ratio}%`});
    if (thumb) frame.append(el("img", {src: thumb.src, alt: ex.key, width: String(thumb.w), height: String(thumb.h)}));
    else frame.append(el("span", {class: "nothumb", text: D.has_videos ? "no frame" : "no video given"}));
    if (ex.gt) frame.append(boxDiv("gt", ex.gt, ex.kind === "miss" ? `GT ${c.name}` : "GT"));
    if (ex.det) frame.append(boxDiv("det", ex.det, ex.score != null ? `${ex.kind === "fp" ? c.name : "pred"} ${ex.score.toFixed(2)}` : "pred box"));
    const cap = el("div", {class: "cap"},
      el("div", {class: "why", text: ex.why}),
      el("div", {text: [ex.score != null ? `score ${ex.score.toFixed(3)}` : null, ex.iou != null ? `IoU ${ex.iou.toFixed(2)}` : null].filter(Boolean).join(" \u00b7 ")}),
      ex.acts.length ? el("div", {class: "muted", text: "person's actions: " + ex.acts.map(name).join(", ")}) : null,
      el("div", {class: "muted small", text: ex.key}));
    return el("div", {class: "ex"}, frame, cap);
  }
  function examples(c) {
    const ex = D.examples[String(c.id)] || {fp: [], miss: []};
    for (const [kind, box, title] of [["fp", "#fps", "highest-scoring false positives"], ["miss", "#misses", "missed ground-truth boxes"]]) {
      const list = ex[kind];
      $(box + "-title").textContent = `${title} (${list.length} shown)`;
      $(box).replaceChildren(...list.map(e => exampleCard(e, c)));
    }
  }

  // ------------------------------------------------------------------ selection
  function select(id, scroll) {
    const c = byId.get(id);
    if (!c) return;
    selected = id;
    markRow();
    for (const line of document.querySelectorAll("#allcurves .curve")) {
      const on = line.dataset.id === String(id);
      line.classList.toggle("selected", on);
      if (on) line.parentNode.append(line);  // draw on top
    }
    $("#selname").textContent = `${c.id} ${c.name}`;
    $("#selstats").textContent = `AP ${pct(c.ap)} \u00b7 ${num(c.gt)} ground-truth boxes \u00b7 ${num(c.det)} detections \u00b7 ` +
      `${num(c.tp)} true positives \u00b7 best F1 ${fix(c.f1, 3)} at score >= ${fix(c.thr, 3)} \u00b7 ` +
      `false positives in the top ${num(c.gt)}: ` + KINDS.map(k => `${k} ${c.fp_kinds[k]}`).join(", ");
    classCurve(c);
    examples(c);
    if (location.hash !== "#class-" + id) history.replaceState(null, "", "#class-" + id);
    if (scroll) $("#selected").scrollIntoView({behavior: "smooth", block: "start"});
  }

  // ------------------------------------------------------------------ confusions, videos
  function confusions() {
    const list = $("#pairs");
    if (!D.confusion.top.length) list.append(el("li", {text: "no false positive on a ground-truth person among the top-N detections"}));
    for (const [p, t, n] of D.confusion.top) list.append(el("li", {}, `${n} \u00d7 predicted `, el("b", {text: name(p)}), " on a person who does ", el("b", {text: name(t)})));
    const m = D.confusion.matrix;
    const table = $("#cm");
    const head = el("tr", {}, el("th", {class: "name", text: "predicted \u2193 / true \u2192"}));
    for (const t of m.true) head.append(el("th", {class: "rot"}, el("div", {text: name(t)})));
    table.append(el("thead", {}, head));
    const max = Math.max(1, ...m.counts.flat());
    const body = el("tbody");
    m.pred.forEach((p, i) => {
      const tr = el("tr", {}, el("th", {class: "name", text: name(p)}));
      m.counts[i].forEach(n => tr.append(el("td", {text: n ? String(n) : "", style: `background:rgba(215,48,39,${(0.85 * n / max).toFixed(3)})`})));
      tr.addEventListener("click", () => select(p, true));
      body.append(tr);
    });
    table.append(body);
  }
  function videos() {
    const cols = [
      {key: "id", label: "video", cls: "name", first: 1, cell: v => v.id},
      {key: "map", label: "mAP", first: 1, cell: v => el("span", {}, el("span", {class: "bar", style: `width:${v.map == null ? 0 : 60 * v.map}px`}), " " + pct(v.map))},
      {key: "classes", label: "classes", title: "classes with ground truth in the video", cell: v => num(v.classes)},
      {key: "gt", label: "GT", cell: v => num(v.gt)},
      {key: "det", label: "detections", cell: v => num(v.det)},
      {key: "tp", label: "TP", cell: v => num(v.tp)},
    ];
    sortable($("#videos"), D.videos, cols, null, {key: "map", dir: 1});
  }

  headline();
  classTable();
  allCurves();
  confusions();
  videos();
  const fromHash = /^#class-(\d+)$/.exec(location.hash);
  select(fromHash && byId.has(+fromHash[1]) ? +fromHash[1] : D.default_class, false);
  document.body.dataset.ready = "1";
})();
