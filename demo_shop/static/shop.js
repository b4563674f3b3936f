/* Progressive enhancement for cart forms (they work as plain form posts without this).
 * Forms marked data-cart-form="add"|"remove" carry their GA4 item in data-item; on submit we
 * push add_to_cart / remove_from_cart to window.dataLayer, POST with fetch asking for JSON,
 * and update the page in place. Any failure falls back to the ordinary form submission. */
(function () {
  "use strict";
  window.dataLayer = window.dataLayer || [];

  function usd(amount) {
    return "$" + Number(amount).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function cents(amount) {
    return Math.round(amount * 100) / 100;
  }

  function setText(testid, text) {
    document.querySelectorAll('[data-testid="' + testid + '"]').forEach(function (el) {
      el.textContent = text;
    });
  }

  function push(event, item, quantity) {
    var line = Object.assign({}, item, { quantity: quantity });
    var ecommerce = { currency: "USD", value: cents(item.price * quantity), items: [line] };
    if (item.coupon) ecommerce.coupon = item.coupon;
    window.dataLayer.push({ event: event, ecommerce: ecommerce });
  }

  function post(form) {
    return fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form)).toString(),
    }).then(function (response) {
      if (!response.ok) throw new Error("cart request failed: " + response.status);
      return response.json();
    });
  }

  function onAdded(form, item, cart) {
    setText("cart-count", String(cart.count));
    var status = form.querySelector('[data-testid="cart-status"]');
    if (status) {
      status.replaceChildren();
      status.append("Added " + item.item_name + " to your cart. ");
      var link = document.createElement("a");
      link.href = "/cart";
      link.textContent = "View cart";
      status.append(link);
    }
  }

  function onRemoved(form, cart) {
    if (cart.count === 0) {
      window.location.reload(); // the server renders the empty-cart state
      return;
    }
    setText("cart-count", String(cart.count));
    var row = form.closest('[data-testid="cart-item"]');
    if (row) row.remove();
    setText("cart-total", usd(cart.total));
    var savings = document.querySelector('[data-testid="savings"]');
    if (savings) savings.textContent = "\u2212" + usd(cart.savings);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var kind = form instanceof HTMLFormElement ? form.getAttribute("data-cart-form") : null;
    if (kind !== "add" && kind !== "remove") return;
    var item;
    try {
      item = JSON.parse(form.getAttribute("data-item"));
    } catch (err) {
      return; // let the browser post the form normally
    }
    event.preventDefault();
    var quantity = item.quantity;
    if (kind === "add") {
      var input = form.elements.namedItem("qty");
      quantity = Math.min(99, Math.max(1, parseInt(input && input.value, 10) || 1));
      if (input) input.value = String(quantity);
    }
    push(kind === "add" ? "add_to_cart" : "remove_from_cart", item, quantity);
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    post(form)
      .then(function (cart) {
        if (kind === "add") onAdded(form, item, cart);
        else onRemoved(form, cart);
      })
      .catch(function () {
        form.submit(); // plain navigation still does the right thing
      })
      .finally(function () {
        if (button) button.disabled = false;
      });
  });
})();
