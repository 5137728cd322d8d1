-- PyKam default routing in Lua (KEMI): the same logic as etc/pykam.cfg.
--
-- Loaded by etc/pykam-lua.cfg (cfgengine "lua"). Stateless proxy: OPTIONS keepalives to the
-- proxy are answered, malformed requests dropped, requests for local users get 404 until the
-- registrar milestone lands, everything else is relayed with forward().
-- Reload without restart: pykamcmd app_lua.reload

-- request_route
function ksr_request_route()
	ksr_route_reqinit()

	if KSR.is_OPTIONS() and KSR.is_myself_ruri() and KSR.pv.is_null("$rU") then
		KSR.sl.sl_send_reply(200, "Keepalive")
		KSR.x.exit()
	end

	if KSR.is_myself_ruri() then
		if KSR.is_ACK() then
			KSR.x.exit()
		end
		KSR.info("no local user for " .. KSR.pv.get("$ru") .. " (" .. KSR.pv.get("$rm")
			.. " from " .. KSR.pv.gete("$fu") .. ")\n")
		KSR.sl.sl_send_reply(404, "Not Found")
		KSR.x.exit()
	end

	ksr_route_relay()
end

-- route[REQINIT]
function ksr_route_reqinit()
	KSR.force_rport()
	if KSR.maxfwd.mf_process_maxfwd_header(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		KSR.x.exit()
	end
	if KSR.sanity.sanity_check(17895, 7) < 0 then
		KSR.warn("malformed SIP request from " .. KSR.pv.get("$si") .. ":"
			.. KSR.pv.get("$sp") .. "\n")
		KSR.x.exit()
	end
end

-- route[RELAY]
function ksr_route_relay()
	if KSR.forward() < 0 then
		KSR.err("cannot forward " .. KSR.pv.get("$rm") .. " to " .. KSR.pv.get("$ru") .. "\n")
		if not KSR.is_ACK() then
			KSR.sl.sl_send_reply(503, "Service Unavailable")
		end
	end
	KSR.x.exit()
end

-- reply_route: replies are relayed statelessly by their Via headers afterwards
function ksr_reply_route()
	KSR.dbg("reply " .. KSR.pv.gete("$rs") .. " " .. KSR.pv.gete("$rr") .. " for "
		.. KSR.pv.gete("$ci") .. "\n")
end
