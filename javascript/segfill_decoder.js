// SegFill browser decoder: SAM's prompt encoder + mask decoder in the browser (onnxruntime-web), fed with the
// image embedding the server computed once, so a hover or a click draws its mask without a round trip.
//
// The canvas uses it through window.SegFillDecoder (no DOM of its own, no gradio knowledge):
//   SegFillDecoder.prepare(info)                  -> Promise<boolean>  info = payload.sam from Python (render.py);
//                                                    loads onnxruntime-web, the model's decoder and the image's
//                                                    embedding (each once); false when this model's decoder does
//                                                    not run in the browser (clicks then use the server route)
//   SegFillDecoder.predict(info, points, box, opt) -> Promise<result>  points [[x, y, label], ...] and box
//                                                    [x0, y0, x1, y1] in image pixels; opt.candidate picks one;
//                                                    opt.previous = the result this prompt refines (its low-res
//                                                    logits are fed back, as the server's session does)
//       result = {mask: Uint8ClampedArray (width*height, 0 or 255), width, height, scores, candidate, best,
//                 lowRes, points, box, source: "browser" | "server", ms}
//   SegFillDecoder.alphaCanvas(result)            -> white with the mask as alpha, flagged segfillAlpha (what the
//                                                    canvas draws without reading pixels back)
//   SegFillDecoder.status(info)                   -> {decoder, embedding, error} ("idle" | "loading" | "ready")
// Masks come at info.display (the size the tab draws, at most 1024 px a side). Points go to the encoder's frame
// with exactly the arithmetic of segment-anything's ResizeLongestSide (x * (new_w / w)).
(function () {
    "use strict";
    if (window.SegFillDecoder) {
        return;
    }

    var ortPromise = null;
    var sessions = {};   // model_key -> {promise, session, state}
    var embeddings = {}; // embedding_key + "/" + digest -> {promise, tensor, inputSize, originalSize}
    var embeddingOrder = [];
    var MAX_EMBEDDINGS = 4;
    var runQueue = Promise.resolve();

    function loadScript(url) {
        return new Promise(function (resolve, reject) {
            var script = document.createElement("script");
            script.src = url;
            script.async = true;
            script.onload = function () { resolve(); };
            script.onerror = function () { reject(new Error("could not load " + url)); };
            document.head.appendChild(script);
        });
    }

    function loadOrt(webUrl) {
        if (!ortPromise) {
            ortPromise = (window.ort ? Promise.resolve() : loadScript(webUrl + "ort.wasm.min.js")).then(function () {
                var ort = window.ort;
                ort.env.wasm.wasmPaths = webUrl;   // ort-wasm-simd-threaded.mjs / .wasm from SegFill's own route
                // worker threads need a cross-origin isolated page: the standalone app's is (COOP/COEP headers),
                // the WebUI's is not, so there the decoder runs on one thread
                ort.env.wasm.numThreads = window.crossOriginIsolated ?
                    Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
                ort.env.wasm.proxy = false;
                return ort;
            });
            ortPromise.catch(function () { ortPromise = null; });
        }
        return ortPromise;
    }

    function decoderFor(info) {
        var entry = sessions[info.model_key];
        if (!entry) {
            entry = sessions[info.model_key] = {state: "loading", session: null, error: null};
            entry.promise = loadOrt(info.web_url).then(function (ort) {
                return fetch(info.decoder_url, {credentials: "same-origin"}).then(function (response) {
                    if (!response.ok) {
                        throw new Error("decoder: HTTP " + response.status);
                    }
                    return response.arrayBuffer();
                }).then(function (bytes) {
                    return ort.InferenceSession.create(new Uint8Array(bytes), {executionProviders: ["wasm"],
                        graphOptimizationLevel: "all"});
                });
            }).then(function (session) {
                entry.session = session;
                entry.state = "ready";
                return session;
            }, function (error) {
                entry.state = "error";
                entry.error = String(error && error.message || error);
                delete sessions[info.model_key];  // try again next time
                throw error;
            });
        }
        return entry.promise;
    }

    // IEEE 754 half -> float, for embeddings the server sends as float16 (half the bytes)
    function halfToFloat32(halves) {
        var out = new Float32Array(halves.length);
        for (var i = 0; i < halves.length; i++) {
            var h = halves[i];
            var sign = (h & 0x8000) ? -1 : 1;
            var exponent = (h >> 10) & 0x1f;
            var fraction = h & 0x03ff;
            if (exponent === 0) {
                out[i] = sign * fraction * 5.960464477539063e-8;  // 2^-24
            } else if (exponent === 31) {
                out[i] = fraction ? NaN : sign * Infinity;
            } else {
                out[i] = sign * (1 + fraction / 1024) * Math.pow(2, exponent - 15);
            }
        }
        return out;
    }

    function pair(text) {
        return String(text || "").split(",").map(Number);
    }

    function embeddingFor(info) {
        var key = info.embedding_key + "/" + info.digest;
        var entry = embeddings[key];
        if (!entry) {
            entry = embeddings[key] = {state: "loading"};
            embeddingOrder.push(key);
            while (embeddingOrder.length > MAX_EMBEDDINGS) {
                delete embeddings[embeddingOrder.shift()];
            }
            entry.promise = Promise.all([loadOrt(info.web_url), fetch(info.embedding_url, {credentials: "same-origin"})])
                .then(function (results) {
                    var ort = results[0], response = results[1];
                    if (!response.ok) {
                        throw new Error("embedding: HTTP " + response.status);
                    }
                    var dtype = response.headers.get("X-SegFill-Dtype");
                    var shape = pair(response.headers.get("X-SegFill-Shape"));
                    entry.inputSize = pair(response.headers.get("X-SegFill-Input-Size"));
                    entry.originalSize = pair(response.headers.get("X-SegFill-Original-Size"));
                    return response.arrayBuffer().then(function (bytes) {
                        var data = dtype === "float16" ? halfToFloat32(new Uint16Array(bytes)) : new Float32Array(bytes);
                        entry.tensor = new ort.Tensor("float32", data, shape);
                        entry.dtype = dtype;
                        entry.state = "ready";
                        return entry;
                    });
                })
                .catch(function (error) {
                    entry.state = "error";
                    entry.error = String(error && error.message || error);
                    delete embeddings[key];
                    throw error;
                });
        }
        return entry.promise;
    }

    function sameList(a, b) {
        if (!a || !b || a.length !== b.length) {
            return false;
        }
        for (var i = 0; i < a.length; i++) {
            if (String(a[i]) !== String(b[i])) {
                return false;
            }
        }
        return true;
    }

    // the session's rule: feed the previous answer back only when this prompt is it with points appended
    function extendsPrevious(previous, points, box) {
        if (!previous || !previous.lowRes || !sameList(previous.box || [], box || [])) {
            return false;
        }
        if (points.length <= previous.points.length) {
            return false;
        }
        for (var i = 0; i < previous.points.length; i++) {
            if (!sameList(previous.points[i], points[i])) {
                return false;
            }
        }
        return true;
    }

    function browserPredict(info, points, box, opt) {
        return Promise.all([loadOrt(info.web_url), decoderFor(info), embeddingFor(info)]).then(function (r) {
            var ort = r[0], session = r[1], emb = r[2];
            var started = performance.now();
            var oh = emb.originalSize[0], ow = emb.originalSize[1];
            var sx = emb.inputSize[1] / ow, sy = emb.inputSize[0] / oh;
            var coords = [], labels = [];
            points.forEach(function (p) {
                coords.push(p[0] * sx, p[1] * sy);
                labels.push(p[2] === 0 ? 0 : 1);
            });
            if (box) {
                coords.push(box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy);
                labels.push(2, 3);
            } else {
                coords.push(0, 0);
                labels.push(-1);
            }
            var n = labels.length;
            var side = 4 * emb.tensor.dims[3];
            var maskInput = new Float32Array(side * side);
            var hasMask = 0;
            var previous = opt.previous;
            if (extendsPrevious(previous, points, box)) {
                var index = previous.candidate;
                maskInput.set(previous.lowRes.subarray(index * side * side, (index + 1) * side * side));
                hasMask = 1;
            }
            var width = info.display[0], height = info.display[1];
            var multimask = points.length === 1 && !box;
            var token = multimask ? (opt.candidate != null && opt.candidate < 3 ? opt.candidate + 1 : -1) : 0;
            var feeds = {
                image_embeddings: emb.tensor,
                point_coords: new ort.Tensor("float32", new Float32Array(coords), [1, n, 2]),
                point_labels: new ort.Tensor("float32", new Float32Array(labels), [1, n]),
                mask_input: new ort.Tensor("float32", maskInput, [1, 1, side, side]),
                has_mask_input: new ort.Tensor("float32", new Float32Array([hasMask]), [1]),
                orig_im_size: new ort.Tensor("float32", new Float32Array([height, width]), [2]),
                candidate: new ort.Tensor("int64", new BigInt64Array([BigInt(token)]), [1])
            };
            // one run at a time per page (onnxruntime-web refuses overlapping runs of a session): a click that
            // comes while a hover is being decoded waits for it instead of failing over to the server
            var run = runQueue.then(function () { return session.run(feeds); });
            runQueue = run.catch(function () {});
            return run.then(function (out) {
                var first = multimask ? 1 : 0, count = multimask ? 3 : 1;
                var ious = out.iou_predictions.data;
                var scores = [];
                for (var c = 0; c < count; c++) {
                    scores.push(ious[first + c]);
                }
                var best = 0;
                scores.forEach(function (s, i) { if (s > scores[best]) { best = i; } });
                var candidate = Number(out.chosen.data[0]) - first;  // the one the decoder upscaled
                var plane = width * height;
                var logits = out.masks.data;
                var mask = new Uint8ClampedArray(plane);
                for (var i = 0; i < plane; i++) {
                    mask[i] = logits[i] > 0 ? 255 : 0;
                }
                var low = out.low_res_masks.data;
                var lowPlane = side * side;
                return {
                    mask: mask, width: width, height: height, scores: scores, candidate: candidate, best: best,
                    lowRes: new Float32Array(low.subarray(first * lowPlane, (first + count) * lowPlane)),
                    points: points, box: box || null, source: "browser", ms: performance.now() - started
                };
            });
        });
    }

    function decodePng(url, width, height) {
        return new Promise(function (resolve, reject) {
            var img = new Image();
            img.onload = function () {
                var canvas = document.createElement("canvas");
                canvas.width = width;
                canvas.height = height;
                var ctx = canvas.getContext("2d");
                ctx.drawImage(img, 0, 0, width, height);
                var rgba = ctx.getImageData(0, 0, width, height).data;
                var mask = new Uint8ClampedArray(width * height);
                for (var i = 0; i < mask.length; i++) {
                    mask[i] = rgba[4 * i] > 127 ? 255 : 0;
                }
                resolve(mask);
            };
            img.onerror = function () { reject(new Error("unreadable mask")); };
            img.src = url;
        });
    }

    // numpy's packbits (row-major, most significant bit first), base64 -> 0 / 255 per pixel
    function unpackBits(text, count) {
        var bytes = atob(text);
        var mask = new Uint8ClampedArray(count);
        for (var i = 0, n = Math.min(bytes.length, Math.ceil(count / 8)); i < n; i++) {
            var byte = bytes.charCodeAt(i);
            if (!byte) {
                continue;
            }
            var base = i * 8;
            for (var bit = 0; bit < 8 && base + bit < count; bit++) {
                if (byte & (128 >> bit)) {
                    mask[base + bit] = 255;
                }
            }
        }
        return mask;
    }

    // the lean server route: for families whose decoder does not export, and until the browser one is ready
    function serverPredict(info, points, box, opt) {
        var started = performance.now();
        var body = {embedding_key: info.embedding_key, digest: info.digest, points: points, box: box || null,
                    mask_format: "bits"};
        if (opt.candidate != null) {
            body.candidate = opt.candidate;
        }
        if (opt.previous) {
            body.previous_points = opt.previous.points;
            body.previous_candidate = opt.previous.candidate;
        }
        return fetch(info.click_url, {method: "POST", credentials: "same-origin",
                                      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})
            .then(function (response) {
                return response.json().then(function (reply) {
                    if (!response.ok) {
                        throw new Error(reply.detail || ("HTTP " + response.status));
                    }
                    return reply;
                });
            }).then(function (reply) {
                var decoded = reply.mask_bits !== undefined ? Promise.resolve(unpackBits(reply.mask_bits, reply.width * reply.height))
                    : decodePng(reply.mask, reply.width, reply.height);
                return decoded.then(function (mask) {
                    return {mask: mask, width: reply.width, height: reply.height, scores: reply.scores,
                            candidate: reply.candidate, best: reply.best, lowRes: null, points: points,
                            box: box || null, source: "server", serverMs: reply.server_ms,
                            ms: performance.now() - started};
                });
            });
    }

    function ready(info) {
        var decoder = info && sessions[info.model_key];
        var emb = info && embeddings[info.embedding_key + "/" + info.digest];
        return !!(decoder && decoder.state === "ready" && emb && emb.state === "ready");
    }

    window.SegFillDecoder = {
        prepare: function (info) {
            if (!info || !info.decoder_url) {
                return Promise.resolve(false);
            }
            return Promise.all([decoderFor(info), embeddingFor(info)]).then(function () { return true; },
                                                                           function () { return false; });
        },
        ready: ready,
        predict: function (info, points, box, opt) {
            opt = opt || {};
            points = (points || []).map(function (p) { return [Number(p[0]), Number(p[1]), p.length > 2 ? Number(p[2]) : 1]; });
            if (info && info.decoder_url && (ready(info) || opt.wait) && !opt.server) {
                return browserPredict(info, points, box, opt).catch(function () {
                    return serverPredict(info, points, box, opt);
                });
            }
            if (info && info.decoder_url && !opt.server) {
                window.SegFillDecoder.prepare(info);  // warm up for the next pointer move
            }
            return serverPredict(info, points, box, opt);
        },
        // the mask as white with alpha = mask, flagged so the canvas draws it as it is (one pass, no readback)
        alphaCanvas: function (result) {
            var canvas = document.createElement("canvas");
            canvas.width = result.width;
            canvas.height = result.height;
            var ctx = canvas.getContext("2d");
            var image = ctx.createImageData(result.width, result.height);
            var rgba = new Uint32Array(image.data.buffer);
            var white = new Uint8ClampedArray([255, 255, 255, 255]);
            var opaque = new Uint32Array(white.buffer)[0];
            for (var i = 0; i < result.mask.length; i++) {
                if (result.mask[i]) {
                    rgba[i] = opaque;
                }
            }
            ctx.putImageData(image, 0, 0);
            canvas.segfillAlpha = true;
            return canvas;
        },
        status: function (info) {
            var decoder = info && sessions[info.model_key];
            var emb = info && embeddings[info.embedding_key + "/" + info.digest];
            return {decoder: decoder ? decoder.state : "idle", embedding: emb ? emb.state : "idle",
                    dtype: emb && emb.dtype || null, error: (decoder && decoder.error) || (emb && emb.error) || null};
        }
    };
})();
