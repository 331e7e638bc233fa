// Night page: the frame and result tables, drawn from the JSON in the page (night-data).
// Cells are set with textContent, so no value from a FITS header or a flag is read as markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("night-data").textContent);
  var root = window.IOP_ROOT || "";

  function fixed(value, digits) {
    return value === null || value === undefined ? "" : Number(value).toFixed(digits);
  }
  function withError(value, error, digits) {
    if (value === null || value === undefined) return "—";
    return fixed(value, digits) + (error === null || error === undefined ? "" : " ± " + fixed(error, digits));
  }
  function header(table, names) {
    var row = table.tHead.insertRow();
    names.forEach(function (name) {
      var th = document.createElement("th");
      th.textContent = name;
      row.appendChild(th);
    });
  }
  function cell(tr, text, className) {
    var td = tr.insertCell();
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    return td;
  }

  // Flag bits are sent as integers with the names of the bits (lowest first).
  function labels(names, value) {
    if (value === null || value === undefined) return "";
    return names.filter(function (bit) { return (value & bit[0]) !== 0; })
      .map(function (bit) { return bit[1]; }).join(", ");
  }

  // A result's source link opens its light curve at the result's band, around this night.
  var CONTEXT_DAYS = 15;
  function sourceView(band) {
    var night = Date.parse(data.night + "T12:00:00Z");
    function day(offset) { return new Date(night + offset * 86400000).toISOString().slice(0, 10); }
    var query = new URLSearchParams();
    if (band) query.set("band", band);
    query.set("from", day(-CONTEXT_DAYS));
    query.set("to", day(CONTEXT_DAYS + 1));
    return "?" + query.toString();
  }

  var f = {};
  data.frame_columns.forEach(function (name, i) { f[name] = i; });
  var byType = {};
  data.frames.forEach(function (row) {
    (byType[row[f.type]] = byType[row[f.type]] || []).push(row);
  });
  document.querySelectorAll("table.frames").forEach(function (table) {
    var rows = byType[table.getAttribute("data-kind")] || [];
    header(table, ["Preview", "File", "Time (UTC)", "OBJECT", "Instrument", "Mode", "Band", "Angle",
                   "Exp (s)", "Binning", "Size", "Flags", "Reduced", "Error"]);
    var body = document.createDocumentFragment();
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      if (row[f.error]) tr.className = "bad";
      var preview = tr.insertCell();
      var thumb = data.thumbs[row[f.filename]];
      if (thumb) {
        var img = document.createElement("img");
        img.className = "thumb";
        img.loading = "lazy";
        img.src = root + thumb;
        img.alt = "preview of " + row[f.filename];
        preview.appendChild(img);
      }
      cell(tr, row[f.filename]);
      cell(tr, row[f.time]);
      cell(tr, row[f.object]);
      cell(tr, row[f.instrument]);
      cell(tr, row[f.mode]);
      cell(tr, row[f.band]);
      cell(tr, fixed(row[f.angle], 1));
      cell(tr, fixed(row[f.exptime], 1));
      cell(tr, row[f.binning]);
      cell(tr, row[f.size]);
      cell(tr, labels(data.flag_names.raw, row[f.flags]), "flags");
      var reduced = labels(data.flag_names.reduced, row[f.reduced_flags]);
      if (row[f.seeing] !== null) reduced += "; seeing " + fixed(row[f.seeing], 2) + "″";
      if (row[f.astrometry]) reduced += "; WCS " + row[f.astrometry];
      cell(tr, reduced, "flags");
      cell(tr, row[f.error]);
      body.appendChild(tr);
    });
    table.tBodies[0].appendChild(body);
  });

  var results = document.getElementById("results-table");
  if (results) {
    var r = {};
    data.result_columns.forEach(function (name, i) { r[name] = i; });
    header(results, ["Source", "Time (UTC)", "Mode", "Method", "Instrument", "Band", "Frames", "Mag",
                     "p (%)", "χ (deg)", "Automatic flags", "Manual flags", "Reasons"]);
    var body = document.createDocumentFragment();
    data.results.forEach(function (row) {
      var tr = document.createElement("tr");
      if (row[r.flagged]) tr.className = "flagged";
      var link = document.createElement("a");
      link.href = root + row[r.source_page] + sourceView(row[r.band]);
      link.title = "light curve in " + row[r.band] + " around this night";
      link.textContent = row[r.source];
      tr.insertCell().appendChild(link);
      cell(tr, row[r.time]);
      cell(tr, row[r.mode]);
      cell(tr, row[r.method]);
      cell(tr, row[r.instrument]);
      cell(tr, row[r.band]);
      cell(tr, row[r.n_frames]);
      cell(tr, withError(row[r.mag], row[r.mag_err], 3));
      cell(tr, withError(row[r.p_pct], row[r.p_pct_err], 2));
      cell(tr, withError(row[r.chi], row[r.chi_err], 1));
      cell(tr, row[r.auto_flags], "flags");
      cell(tr, row[r.manual_flags], "flags");
      cell(tr, row[r.flag_reasons]);
      body.appendChild(tr);
    });
    results.tBodies[0].appendChild(body);
  }

  // Observing conditions: seeing, zero point and sky level against time, one trace per
  // instrument and panel; flagged frames as red crosses.
  var plotDiv = document.getElementById("conditions-plot");
  if (plotDiv && window.Plotly) {
    var c = {};
    data.condition_columns.forEach(function (name, i) { c[name] = i; });
    var panels = [
      { key: "seeing", title: "seeing (″)", axis: "y" },
      { key: "zero_point", title: "zero point (mag)", axis: "y2" },
      { key: "sky", title: "sky (ADU s⁻¹ px⁻¹)", axis: "y3" }
    ];
    var instruments = [];
    data.conditions.forEach(function (row) {
      if (instruments.indexOf(row[c.instrument]) < 0) instruments.push(row[c.instrument]);
    });
    var colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf"];
    var traces = [];
    panels.forEach(function (panel, p) {
      instruments.forEach(function (name, k) {
        [false, true].forEach(function (flagged) {
          var chosen = data.conditions.filter(function (row) {
            return row[c.instrument] === name && row[c.flagged] === flagged && row[c[panel.key]] !== null;
          });
          if (!chosen.length) return;
          traces.push({
            type: "scatter", mode: flagged ? "markers" : "lines+markers",
            name: flagged ? name + " (flagged)" : name,
            legendgroup: name + (flagged ? " flagged" : ""),
            showlegend: !traces.some(function (t) { return t.legendgroup === name + (flagged ? " flagged" : ""); }),
            x: chosen.map(function (row) { return row[c.date]; }),
            y: chosen.map(function (row) { return row[c[panel.key]]; }),
            text: chosen.map(function (row) {
              return row[c.filename] + " (" + row[c.band] + ")" + (row[c.why] ? "<br>" + row[c.why].replace(/</g, "&lt;") : "");
            }),
            hovertemplate: "%{x}<br>%{y}<br>%{text}<extra></extra>",
            xaxis: "x", yaxis: panel.axis,
            marker: flagged ? { color: "#d62728", symbol: "x", size: 9 } : { color: colours[k % colours.length], size: 5 },
            line: { width: 1 },
            meta: { panel: panel.key, instrument: name, flagged: flagged }
          });
        });
      });
    });
    var layout = {
      height: 620, margin: { l: 70, r: 20, t: 20, b: 50 }, hovermode: "closest",
      legend: { orientation: "h", y: -0.12 },
      xaxis: { type: "date", title: { text: "time (UTC)" }, anchor: "y3" },
      yaxis: { domain: [0.70, 1.0], title: { text: panels[0].title } },
      yaxis2: { domain: [0.36, 0.66], title: { text: panels[1].title } },
      yaxis3: { domain: [0.0, 0.32], title: { text: panels[2].title } }
    };
    Plotly.newPlot(plotDiv, traces, layout, { responsive: true, displaylogo: false });
  }
})();
