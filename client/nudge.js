/* nudge client: measures visible time, relays the shop's cart events, reveals pre-rendered nudges
   on their trigger. Everything it shows is already in the page: no request before a reveal. */
(function () {
  "use strict";
  var cfgEl = document.getElementById("nudge-config");
  if (!cfgEl || window.__nudge) return;
  var cfg;
  try { cfg = JSON.parse(cfgEl.textContent); } catch (e) { return; }
  window.__nudge = cfg;

  var EXIT_EDGE = 20, ARM_MS = 1000, EXIT_DELAY = 150;
  var FLICK = 2; // px/ms upward: a move to leave on a touch screen
  var SAVE_EVERY = 5; // the dwell cookie is rewritten every 5 visible seconds
  var CART = { add_to_cart: 1, remove_from_cart: 1, begin_checkout: 1, purchase: 1 };
  var loadedAt = Date.now(), visibleMs = 0, visibleSince = document.hidden ? 0 : loadedAt;
  var queue = [], open = null, lastFocus = null, sent = 0;

  function dwell() {
    return Math.floor((visibleMs + (visibleSince ? Date.now() - visibleSince : 0)) / 1000);
  }
  // Dwell also travels in a small cookie the next request carries, so it counts even when the
  // shopper navigates away before a beacon lands; the Worker credits each page view once.
  var saved = 0;
  function saveDwell() {
    if (!cfg.track) return; // no consent: nothing is stored, not even dwell
    saved = dwell();
    document.cookie = "nudge_dw=" + cfg.pv + "." + dwell() + "; path=/; max-age=1800; samesite=lax" +
      (location.protocol === "https:" ? "; secure" : "");
  }
  function send(withDwell) {
    if (!cfg.track) { queue.length = 0; return; }
    if (!queue.length && !withDwell) return;
    var events = queue.splice(0, 20);
    events.forEach(function (ev) { if (!ev.id) ev.id = cfg.pv + "." + (++sent); }); // replays are dropped
    var body = { pv: cfg.pv, dwell: dwell(), events: events };
    var data = JSON.stringify(body);
    var ok = false;
    try { ok = navigator.sendBeacon(cfg.beacon, new Blob([data], { type: "application/json" })); } catch (e) {}
    if (!ok && window.fetch) {
      fetch(cfg.beacon, { method: "POST", body: data, keepalive: true, credentials: "same-origin",
        headers: { "content-type": "application/json" } }).catch(function () {});
    }
    if (queue.length) send(false);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (visibleSince) { visibleMs += Date.now() - visibleSince; visibleSince = 0; }
      saveDwell(); send(true);
    } else if (!visibleSince) { visibleSince = Date.now(); }
  });
  addEventListener("pagehide", function () { saveDwell(); send(true); });
  var lastActive = loadedAt;
  setInterval(function () {
    if (dwell() - saved >= SAVE_EVERY) saveDwell();
    check("page_load"); check("time"); check("inactivity");
  }, 1000);
  ["mousemove", "keydown", "pointerdown", "touchstart"].forEach(function (type) {
    addEventListener(type, function () { lastActive = Date.now(); }, { passive: true });
  });
  addEventListener("scroll", function () { lastActive = Date.now(); check("scroll"); }, { passive: true });
  function scrolled() {
    var h = document.documentElement.scrollHeight - innerHeight;
    return h <= 0 ? 100 : Math.round(100 * scrollY / h);
  }

  // GA4's two forms on the dataLayer: gtag('event', name, params) pushes its arguments object,
  // dataLayer.push({event, ecommerce}) pushes an object; both become {event, ecommerce}.
  function ga4(entry) {
    if (entry && entry[0] === "event" && typeof entry[1] === "string" && typeof entry.length === "number") {
      var params = entry[2] && typeof entry[2] === "object" ? entry[2] : {};
      return { event: entry[1], ecommerce: params };
    }
    return entry;
  }

  // Relay cart events (entries pushed before we loaded count too). Identity only as the shop's
  // server signed it (`nudge_identity`): a bare user_id is never sent.
  var identified = false;
  function relay(entry) {
    entry = ga4(entry);
    if (entry && typeof entry.nudge_identity === "string" && !identified) {
      identified = true; queue.push({ type: "identify", token: entry.nudge_identity.slice(0, 512) }); send(false);
    }
    if (!entry || !CART[entry.event]) return;
    if (cfg.cartEvents === false && /_cart$/.test(entry.event)) return; // the edge saw the cart POST
    var ec = entry.ecommerce || {}, items = [];
    (ec.items || []).slice(0, 20).forEach(function (it) {
      if (it && it.item_id != null) items.push({ id: String(it.item_id).slice(0, 48), quantity: Math.max(1, Math.min(999, +it.quantity || 1)) });
    });
    var ev = { type: entry.event, items: items };
    if (typeof ec.value === "number" && ec.value >= 0) ev.value = ec.value;
    queue.push(ev); send(true);
  }
  var dl = window.dataLayer = window.dataLayer || [];
  for (var i = 0; i < dl.length; i++) relay(dl[i]);
  var push = dl.push;
  dl.push = function () {
    for (var j = 0; j < arguments.length; j++) relay(arguments[j]);
    return push.apply(dl, arguments);
  };

  // Sites without a dataLayer: <button data-nudge-event="add_to_cart" data-nudge-item="SKU"
  // data-nudge-quantity="1" data-nudge-value="129.00"> reports the same events on click.
  document.addEventListener("click", function (e) {
    var t = e.target.closest && e.target.closest("[data-nudge-event]");
    if (!t) return;
    var id = t.getAttribute("data-nudge-item"), value = parseFloat(t.getAttribute("data-nudge-value"));
    relay({ event: t.getAttribute("data-nudge-event"), ecommerce: {
      items: id ? [{ item_id: id, quantity: +t.getAttribute("data-nudge-quantity") || 1 }] : [],
      value: isFinite(value) ? value : undefined } });
  }, true);

  // Nudges rendered by the Worker, revealed by their trigger.
  function due(n) {
    if (dwell() < (n.minDwell || 0)) return false;
    if (n.trigger === "time") return dwell() >= n.value;
    if (n.trigger === "inactivity") return Date.now() - lastActive >= n.value * 1000;
    if (n.trigger === "scroll") return scrolled() >= n.value;
    return true;
  }
  function check(trigger) {
    (cfg.nudges || []).forEach(function (n) {
      if (n.done || n.trigger !== trigger || !due(n)) return;
      var el = document.getElementById("nudge-" + n.rule);
      if (!el) return;
      if (n.kind === "modal") { if (open) return; showModal(el, n); } else { el.hidden = false; }
      n.done = true;
      if (!n.counted) { queue.push({ type: "nudge_shown", rule: n.rule }); send(false); } // else the Worker counted it
    });
  }
  function focusables(el) {
    return el.querySelectorAll("a[href],button:not([disabled]),input,select,textarea,[tabindex]");
  }
  function showModal(el, n) {
    open = { el: el, n: n }; lastFocus = document.activeElement;
    el.hidden = false;
    var f = el.querySelector("[data-nudge-cta]") || focusables(el)[0];
    if (f) f.focus();
  }
  function close(el) {
    el.hidden = true;
    var rule = el.getAttribute("data-nudge-rule");
    if (rule) { queue.push({ type: "nudge_dismissed", rule: rule }); send(false); }
    if (open && open.el === el) { open = null; if (lastFocus && lastFocus.focus) lastFocus.focus(); }
  }
  document.addEventListener("click", function (e) {
    var t = e.target.closest && e.target.closest("[data-nudge-close]");
    if (t) { e.preventDefault(); close(t.closest(".nudge-modal,.nudge-banner")); return; }
    var cta = e.target.closest && e.target.closest("[data-nudge-cta]");
    var box = cta && cta.closest("[data-nudge-rule]");
    // An offer link records its own click when redeemed; report clicks on other links.
    if (box && !/\/_nudge\/redeem/.test(cta.getAttribute("href") || "")) {
      queue.push({ type: "nudge_clicked", rule: box.getAttribute("data-nudge-rule") }); send(false);
    }
  });
  document.addEventListener("keydown", function (e) {
    if (!open) return;
    if (e.key === "Escape") { close(open.el); return; }
    if (e.key !== "Tab") return;
    var f = focusables(open.el), first = f[0], last = f[f.length - 1];
    if (!first) return;
    if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
  });

  // Exit intent (touch screens): a fast upward scroll, or coming back to the tab after 5 s away.
  // Never the back button: no history tricks.
  if (window.matchMedia && matchMedia("(pointer: coarse)").matches) {
    var lastY = scrollY, lastT = Date.now(), awayAt = 0;
    addEventListener("scroll", function () {
      var now = Date.now(), up = (lastY - scrollY) / Math.max(1, now - lastT);
      lastY = scrollY; lastT = now;
      if (up >= FLICK && now - loadedAt >= ARM_MS) check("exit_intent");
    }, { passive: true });
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) { awayAt = Date.now(); return; }
      if (awayAt && Date.now() - awayAt > 5000) check("exit_intent");
    });
  }

  // Exit intent (desktop): the pointer leaves the page through its top edge and stays out for a
  // moment (coming straight back cancels it). Leaving from a form field is a <select> list or an
  // autofill popup, not a move to leave.
  var exitTimer = 0;
  document.addEventListener("mouseout", function (e) {
    if (e.relatedTarget || e.clientY > EXIT_EDGE || Date.now() - loadedAt < ARM_MS) return;
    var tag = e.target && e.target.tagName;
    if (tag === "SELECT" || tag === "INPUT" || tag === "TEXTAREA" || tag === "OPTION") return;
    clearTimeout(exitTimer);
    exitTimer = setTimeout(function () { check("exit_intent"); }, EXIT_DELAY);
  });
  document.addEventListener("mouseover", function () { clearTimeout(exitTimer); });
  check("page_load");
})();
