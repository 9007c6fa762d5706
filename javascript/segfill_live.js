// SegFill live previews: the mask under the pointer before the click, and the clicked mask before the server's
// answer. The canvas (segfill.js) asks its preview provider; this file answers with SAM's decoder running in the
// browser on the server's cached embedding (segfill_decoder.js, onnxruntime-web), or, for a model whose decoder
// does not export (SAM 2, SAM-HQ) and until the browser's is ready, with the lean click route
// (POST /segfill/v1/click). The click still goes to Python as an event, so history, exports and inpaint use
// exactly the mask the server computes; the preview is replaced by it when it arrives.
//
// window.segfillLive.stats() -> the last previews [{kind, source, ms, decodeMs, at, area, size}] (benchmarks,
// tests); ms = from the canvas' request to the mask ready to draw; area = its pixels at size (display size).
(function () {
    "use strict";
    if (window.segfillLive || !window.segfillCanvas || !window.SegFillDecoder) {
        return;
    }
    var canvas = window.segfillCanvas, decoder = window.SegFillDecoder;
    var MAX_STATS = 200;
    var sam = null;          // payload.sam of the current image (null until its embedding exists)
    var lastClick = null;    // the last click's result: its low-res logits refine the next click, as on the server
    var hoverBusy = false;   // one hover in flight at a time: a slow path never queues up work
    var stats = [];
    var options = {enabled: true, server: false};  // benchmarks compare the paths: off = today's, server = lean

    function record(kind, result, started) {
        var area = 0;
        for (var i = 0; i < result.mask.length; i++) {
            area += result.mask[i] ? 1 : 0;
        }
        var entry = {kind: kind, source: result.source, ms: performance.now() - started,
                     decodeMs: result.ms, at: performance.now(), area: area, size: [result.width, result.height]};
        stats.push(entry);
        if (stats.length > MAX_STATS) {
            stats.shift();
        }
        var root = document.getElementById("segfill_canvas_root");
        if (root) {
            root.setAttribute("data-segfill-preview-count", String(stats.length));
            root.setAttribute("data-segfill-preview-source", result.source);
        }
    }

    function sameImage(info) {
        return sam && info && sam.display && info.width && info.height &&
            Math.abs(sam.display[0] / sam.display[1] - info.width / info.height) < 0.02;
    }

    function provide(info) {
        if (!options.enabled || !sam || !sameImage(info)) {
            return null;
        }
        var points = (info.points || []).map(function (p) { return [p[0], p[1], p.length > 2 ? p[2] : 1]; });
        var started = performance.now();
        var current = sam;
        var opt = {previous: lastClick, server: options.server};
        if (info.kind === "hover") {
            if (hoverBusy) {
                return null;
            }
            // from the browser's decoder, or from the lean route where no decoder runs in the browser (SAM 2,
            // SAM-HQ); a hover never waits for the decoder's download
            if (current.decoder_url && !options.server && !decoder.ready(current)) {
                decoder.prepare(current);
                return null;
            }
            points.push([info.x, info.y, 1]);
            hoverBusy = true;
            return decoder.predict(current, points, info.box, opt).then(function (result) {
                hoverBusy = false;
                if (current !== sam) {
                    return null;
                }
                record("hover", result, started);
                return decoder.alphaCanvas(result);
            }, function (error) {
                hoverBusy = false;
                throw error;
            });
        }
        // a click: info.points already holds the new point
        return decoder.predict(current, points, info.box, opt).then(function (result) {
            if (current !== sam) {
                return null;
            }
            lastClick = result;
            record("click", result, started);
            return decoder.alphaCanvas(result);
        });
    }

    canvas.on("payload", function (p) {
        var next = p && p.sam || null;
        if (!next || !sam || next.digest !== sam.digest || next.model_key !== sam.model_key) {
            lastClick = null;
        }
        if (next && (!p.points || !p.points.length)) {
            lastClick = null;  // the selection was cleared: nothing to refine
        }
        sam = next;
        if (sam && sam.decoder_url) {
            decoder.prepare(sam);  // decoder once per model, embedding once per image, in the background
        }
    });
    canvas.setPreviewProvider(provide);

    window.segfillLive = {
        stats: function () { return stats.slice(); },
        clearStats: function () { stats = []; },
        info: function () { return sam; },
        status: function () { return sam ? decoder.status(sam) : null; },
        // configure({enabled, server}): previews off (today's path: the server's answer only), or from the lean
        // route even where the browser's decoder runs
        configure: function (next) {
            Object.keys(next || {}).forEach(function (k) { options[k] = !!next[k]; });
            return Object.assign({}, options);
        }
    };
})();
