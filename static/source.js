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
  // Data traces name their rows (customdata) and columns (meta.y, meta.err): x, y and the
  // error bars are taken from the rows, which the page carries once.
  figure.data.forEach(function (trace) {
    if (trace.meta && trace.meta.kind === "data") {
      var y = col[trace.meta.y], err = col[trace.meta.err];
      trace.x = trace.customdata.map(function (i) { return rows[i][col.date]; });
      trace.y = trace.customdata.map(function (i) { return rows[i][y]; });
      trace.error_y.array = trace.customdata.map(function (i) { return rows[i][err] || 0; });
      trace.text = trace.customdata.map(function (i) { return hover(rows[i]); });
    }
  });
  var plot = document.getElementById("plot");
  Plotly.newPlot(plot, figure.data, figure.layout, { responsive: true, displaylogo: false });

  plot.on("plotly_click", function (event) {
    var point = event.points && event.points[0];
    if (!point || !point.data.meta || point.data.meta.kind !== "data") return;
    window.location.href = root + rows[point.customdata][col.night_page];
  });

  var toggle = document.getElementById("hide-flagged");
  // imported results (another pipeline's, meta.kind "imported") have their own switch
  var showImported = document.getElementById("show-imported");
  function applyVisibility() {
    var indices = [], visible = [];
    plot.data.forEach(function (trace, i) {
      if (!trace.meta || !(trace.meta.flagged || trace.meta.kind === "imported")) return;
      var shown = !(trace.meta.flagged && toggle.checked) &&
        !(trace.meta.kind === "imported" && showImported && !showImported.checked);
      indices.push(i); visible.push(shown);
    });
    if (indices.length) Plotly.restyle(plot, { visible: visible }, indices);
  }
  toggle.addEventListener("change", function () {
    applyVisibility();
    document.querySelectorAll("#points tbody tr.flagged").forEach(function (tr) { tr.hidden = toggle.checked; });
  });
  if (showImported) showImported.addEventListener("change", applyVisibility);

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
  // The columns every table of iopreport shares (iopreport/store/columns.py), in its order.
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
})();
