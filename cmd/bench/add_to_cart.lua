-- The wrk script of the add-to-cart load: every request is the product page's
-- "Add to cart" form, posted by one guest that exists already. cmd/bench
-- passes the guest's values after wrk's "--":
--
--   wrk ... -s add_to_cart.lua http://host/cart/items -- '<Cookie header>' '<form body>'
--
-- Only init is defined, so wrk formats the request once per thread and then
-- sends it as it would a plain GET: no Lua runs per request, which would
-- slow wrk down on the machine it shares with the server.
--
-- Success is 303 See Other to /cart. wrk's "Non-2xx or 3xx responses" counts
-- every failure the handler has: 403 (CSRF), 404, 422 (stock, cart full),
-- 429, 500. A 200 is not a failure wrk sees, but the handler answers 200
-- only to htmx requests (HX-Request), which these are not.
function init(args)
  if #args ~= 2 then
    error("add_to_cart.lua: want 2 arguments after --, the Cookie header and the form body; got " .. #args)
  end
  wrk.method = "POST"
  wrk.headers["Cookie"] = args[1]
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.body = args[2] -- wrk.format adds the Content-Length
end
