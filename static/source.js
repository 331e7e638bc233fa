// Light curves of one source: Plotly figure built at build time (figure-data: traces,
// layout and which rows each trace draws), rows of the data (points-data) for the points,
// hover text, the table and clicks to the night pages.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("points-data").textContent);
  var figure = JSON.parse(document.getElementById("figure-data").textContent);
  var root = window.IOP_ROOT || "";
  var col = {};
  data.columns.forEach(function (name, i) { col[name] = i; });
  var rows = data.rows;

  // Plotly reads hover text as a small HTML subset: escape everything that came from data.
  function esc(value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function num(value, digits) { return value === null ? "—" : Number(value).toFixed(digits); }
  function hover(row) {
    var lines = [
      "<b>" + esc(row[col.date]) + " UTC</b>",
      "MJD " + num(row[col.mjd], 5),
      esc(row[col.telescope]) + " " + esc(row[col.instrument]) + " " + esc(row[col.band]) +
        " (" + esc(row[col.mode]) + ", " + esc(row[col.method]) + ")",
      "exposure " + num(row[col.exptime], 1) + " s, " + esc(row[col.n_frames]) + " frame(s)"
    ];
    if (row[col.mag] !== null) lines.push("mag " + num(row[col.mag], 3) + " ± " + num(row[col.mag_err], 3));
    if (row[col.p_pct] !== null) lines.push("p " + num(row[col.p_pct], 2) + " ± " + num(row[col.p_pct_err], 2) + " %");
    if (row[col.chi_deg] !== null) lines.push("χ " + num(row[col.chi_deg], 1) + " ± " + num(row[col.chi_deg_err], 1) + "°");
    if (row[col.n_binned] > 1) lines.push("bin of " + esc(row[col.n_binned]) + " results");
    if (row[col.auto_flags]) lines.push("automatic flags: " + esc(row[col.auto_flags]));
    if (row[col.manual_flags]) lines.push("manual flags: " + esc(row[col.manual_flags]));
    if (row[col.flag_reasons]) lines.push("why: " + esc(row[col.flag_reasons]));
    var members = String(row[col.members] || "").split(" ");
    lines.push("files: " + esc(members.slice(0, 4).join(", ")) + (members.length > 4 ? ", …" : ""));
    return lines.join("<br>");
  }
  // The view: band, instruments, time axis (date or MJD) and range, from the address
  // (?band=R&instrument=DIPOL,CAFOS&from=2024-10-01&to=60600.5&x=mjd) or the controls.
  var MJD_UNIX = 40587;  // MJD of 1970-01-01T00:00 UTC
  var params = new URLSearchParams(window.location.search);
  function mjdToDate(mjd) {
    return new Date(Math.round((mjd - MJD_UNIX) * 86400000)).toISOString()
      .replace("T", " ").replace("Z", "");
  }
  function parseTime(text) {  // an MJD or an ISO date/time (UTC) -> MJD; null if neither
    if (text === null || text === undefined || text === "") return null;
    text = String(text).trim();
    if (/^-?\d+(\.\d*)?$/.test(text)) return parseFloat(text);
    text = text.replace(" ", "T");
    if (text.length > 10 && !/([zZ]|[+-]\d\d:?\d\d)$/.test(text)) text += "Z";
    var ms = Date.parse(text);
    return isNaN(ms) ? null : ms / 86400000 + MJD_UNIX;
  }
  var bandSelect = document.getElementById("band-select");
  var toggles = Array.prototype.slice.call(document.querySelectorAll(".instrument-toggle"));
  var axisRadios = Array.prototype.slice.call(document.querySelectorAll("input[name=time-axis]"));
  var hideFlagged = document.getElementById("hide-flagged");
  // imported results (another pipeline's, meta.kind "imported") have their own switch
  var showImported = document.getElementById("show-imported");
  var viewLink = document.getElementById("view-link");
  var wantedBand = params.get("band");
  if (wantedBand && Array.prototype.some.call(bandSelect.options, function (o) { return o.value === wantedBand; })) {
    bandSelect.value = wantedBand;
  }
  if (params.get("instrument")) {
    var wanted = params.get("instrument").split(",");
    toggles.forEach(function (box) { box.checked = wanted.indexOf(box.value) >= 0; });
  }
  var mode = params.get("x") === "mjd" ? "mjd" : "date";
  axisRadios.forEach(function (radio) { radio.checked = radio.value === mode; });
  if (params.get("flagged") === "hide") hideFlagged.checked = true;
  var range = (figure.time_range_mjd || [0, 1]).slice();
  var from = parseTime(params.get("from")), to = parseTime(params.get("to"));
  if (from !== null) range[0] = from;
  if (to !== null) range[1] = to;
  if (range[1] <= range[0]) range[1] = range[0] + 1;

  function xOf(i) { return mode === "mjd" ? rows[i][col.mjd] : rows[i][col.date]; }
  function importedX(trace) { return mode === "mjd" ? trace.meta.mjd : trace.meta.date; }
  function axisRange(mjds) { return mode === "mjd" ? mjds.slice() : mjds.map(mjdToDate); }
  function axisLayout() {
    return mode === "mjd"
      ? { type: "linear", title: { text: "MJD (UTC)" }, hoverformat: ".5f", exponentformat: "none",
          separatethousands: false, tickformat: "" }
      : { type: "date", title: { text: "date (UTC)" }, hoverformat: "%Y-%m-%d %H:%M:%S", tickformat: "" };
  }

  // Data traces name their rows (customdata) and columns (meta.y, meta.err): x, y and the
  // error bars are taken from the rows, which the page carries once.
  figure.data.forEach(function (trace) {
    if (trace.meta && trace.meta.kind === "data") {
      var y = col[trace.meta.y], err = col[trace.meta.err];
      trace.x = trace.customdata.map(xOf);
      trace.y = trace.customdata.map(function (i) { return rows[i][y]; });
      trace.error_y.array = trace.customdata.map(function (i) { return rows[i][err] || 0; });
      trace.text = trace.customdata.map(function (i) { return hover(rows[i]); });
    }
    if (trace.meta && trace.meta.kind === "imported") trace.x = importedX(trace);
  });
  var layout = figure.layout;
  Object.assign(layout.xaxis, axisLayout(), { range: axisRange(range), autorange: false });
  var plot = document.getElementById("plot");
  Plotly.newPlot(plot, figure.data, layout, { responsive: true, displaylogo: false });

  function currentRange() {  // the x range shown, in MJD
    var shown = plot.layout.xaxis.range;
    return mode === "mjd" ? shown.map(Number) : shown.map(parseTime);
  }
  function instrumentsOn() {
    var on = {};
    toggles.forEach(function (box) { on[box.value] = box.checked; });
    return on;
  }
  function rowShown(row) {
    var on = instrumentsOn();
    if (bandSelect.value && row[col.band] !== bandSelect.value) return false;
    if (on[row[col.instrument]] === false) return false;
    return !(hideFlagged.checked && row[col.flagged]);
  }
  function applyView() {
    var on = instrumentsOn(), band = bandSelect.value, visible = [], indices = [];
    plot.data.forEach(function (trace, i) {
      if (!trace.meta) return;
      if (trace.meta.kind === "imported") {
        indices.push(i);
        visible.push(!(showImported && !showImported.checked) &&
                     !(band && trace.meta.band !== band) &&
                     !(hideFlagged.checked && trace.meta.flagged));
        return;
      }
      if (trace.meta.kind !== "data") return;
      indices.push(i);
      visible.push(!(band && trace.meta.band !== band) && on[trace.meta.instrument] !== false &&
                   !(hideFlagged.checked && trace.meta.flagged));
    });
    if (indices.length) Plotly.restyle(plot, { visible: visible }, indices);
    var shapes = {};
    (figure.shape_bands || []).forEach(function (shapeBand, i) {
      shapes["shapes[" + i + "].visible"] = !band || shapeBand === band;
    });
    if (Object.keys(shapes).length) Plotly.relayout(plot, shapes);
    document.querySelectorAll("#points tbody tr").forEach(function (tr) {
      tr.hidden = !rowShown(rows[Number(tr.getAttribute("data-row"))]);
    });
    updateLink();
  }
  function updateLink() {
    var query = new URLSearchParams();
    if (bandSelect.value) query.set("band", bandSelect.value);
    var off = toggles.filter(function (box) { return !box.checked; });
    if (off.length) {
      query.set("instrument", toggles.filter(function (box) { return box.checked; })
        .map(function (box) { return box.value; }).join(","));
    }
    var shown = currentRange();
    if (mode === "mjd") {
      query.set("from", shown[0].toFixed(4));
      query.set("to", shown[1].toFixed(4));
      query.set("x", "mjd");
    } else {
      query.set("from", mjdToDate(shown[0]).slice(0, 16).replace(" ", "T"));
      query.set("to", mjdToDate(shown[1]).slice(0, 16).replace(" ", "T"));
    }
    if (hideFlagged.checked) query.set("flagged", "hide");
    viewLink.href = "?" + query.toString();
  }
  function setMode(next) {
    if (next === mode) return;
    var shown = currentRange();
    mode = next;
    var update = { x: [] }, indices = [];
    plot.data.forEach(function (trace, i) {
      if (!trace.meta) return;
      if (trace.meta.kind === "imported") {
        indices.push(i);
        update.x.push(importedX(trace));
      } else if (trace.meta.kind === "data") {
        indices.push(i);
        update.x.push(trace.customdata.map(xOf));
      }
    });
    Plotly.restyle(plot, update, indices);
    var axis = axisLayout(), change = { "xaxis.range": axisRange(shown), "xaxis.autorange": false };
    Object.keys(axis).forEach(function (key) { change["xaxis." + key] = axis[key]; });
    Plotly.relayout(plot, change);
    updateLink();
  }

  plot.on("plotly_click", function (event) {
    var point = event.points && event.points[0];
    if (!point || !point.data.meta || point.data.meta.kind !== "data") return;
    window.location.href = root + rows[point.customdata][col.night_page];
  });
  plot.on("plotly_relayout", updateLink);
  bandSelect.addEventListener("change", applyView);
  toggles.forEach(function (box) { box.addEventListener("change", applyView); });
  hideFlagged.addEventListener("change", applyView);
  if (showImported) showImported.addEventListener("change", applyView);
  axisRadios.forEach(function (radio) {
    radio.addEventListener("change", function () { if (radio.checked) setMode(radio.value); });
  });

  // Downloads: made in the browser from the data above, so they hold exactly what is plotted.
  function csvField(value) {
    if (value === null || value === undefined) return "";
    var text = String(value);
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  function offer(link, text, type) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var url = URL.createObjectURL(new Blob([text()], { type: type }));
      var a = document.createElement("a");
      a.href = url;
      a.download = link.getAttribute("data-name");
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
    });
  }
  // the downloads hold the one column set of every table (results_table, `export`)
  var downloadIndex = data.download.map(function (name) { return col[name]; });
  function downloadRow(row) { return downloadIndex.map(function (i) { return row[i]; }); }
  offer(document.getElementById("download-csv"), function () {
    var lines = [data.download.map(csvField).join(",")];
    rows.forEach(function (row) { lines.push(downloadRow(row).map(csvField).join(",")); });
    return lines.join("\n") + "\n";
  }, "text/csv");
  offer(document.getElementById("download-json"), function () {
    return JSON.stringify({ source: data.source, columns: data.download, rows: rows.map(downloadRow) });
  }, "application/json");

  // The data table: built with textContent, so no value is ever read as markup.
  var shown = ["date", "mjd", "telescope", "instrument", "band", "mode", "exptime", "mag", "mag_err",
               "p_pct", "p_pct_err", "chi_deg", "chi_deg_err", "q_pct", "u_pct", "auto_flags",
               "manual_flags", "flag_reasons", "n_binned"];
  var table = document.getElementById("points");
  var head = table.tHead.insertRow();
  shown.concat(["night"]).forEach(function (name) {
    var th = document.createElement("th"); th.textContent = name; head.appendChild(th);
  });
  var body = table.tBodies[0];
  var fragment = document.createDocumentFragment();
  for (var r = rows.length - 1; r >= 0; r--) {  // newest first
    var row = rows[r];
    var tr = document.createElement("tr");
    tr.setAttribute("data-row", String(r));
    if (row[col.flagged]) tr.className = "flagged";
    shown.forEach(function (name) {
      var td = document.createElement("td");
      var value = row[col[name]];
      td.textContent = value === null ? "" : String(value);
      tr.appendChild(td);
    });
    var td = document.createElement("td");
    var a = document.createElement("a");
    a.href = root + row[col.night_page];
    a.textContent = row[col.night];
    td.appendChild(a); tr.appendChild(td);
    fragment.appendChild(tr);
  }
  body.appendChild(fragment);
  applyView();
})();
