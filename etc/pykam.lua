-- PyKam default routing in Lua (KEMI), loaded by etc/pykam-lua.cfg (cfgengine "lua").
--
-- The routing of etc/pykam.cfg (OPTIONS keepalive, Max-Forwards and sanity checks, relay of
-- requests for other domains) with the stateful logic of Kamailio's stock kamailio.cfg now
-- that tm and registrar are implemented: REGISTER saved to the location table, requests to
-- local users looked up there (404 when not registered), record-route, in-dialog routing
-- with loose_route, CANCEL/ACK matched to transactions, t_relay with branch/reply/failure
-- routes. No authentication or NAT handling (the stock defaults without WITH_AUTH/WITH_NAT).
-- etc/pykam_routing.py is the same logic in Python. Reload: pykamcmd app_lua.reload

FLT_ACC = 1
FLT_ACCMISSED = 2
FLT_ACCFAILED = 3

-- request_route
function ksr_request_route()
	ksr_route_reqinit()

	-- CANCEL processing
	if KSR.is_CANCEL() then
		if KSR.tm.t_check_trans() > 0 then
			ksr_route_relay()
		end
		KSR.x.exit()
	end

	-- retransmissions are absorbed by their transaction
	if not KSR.is_ACK() then
		if KSR.tmx.t_precheck_trans() > 0 then
			KSR.tm.t_check_trans()
			KSR.x.exit()
		end
		if KSR.tm.t_check_trans() == 0 then
			KSR.x.exit()
		end
	end

	ksr_route_withindlg()

	-- dialog starting requests
	KSR.hdr.remove("Route")
	if KSR.is_method_in("IS") then
		KSR.rr.record_route()
	end
	if KSR.is_INVITE() then
		KSR.setflag(FLT_ACC)
	end

	ksr_route_registrar()

	if KSR.is_myself_ruri() then
		if KSR.pv.is_null("$rU") then
			KSR.sl.sl_send_reply(484, "Address Incomplete")
			KSR.x.exit()
		end
		ksr_route_location()
	end

	-- requests for other domains are relayed (as etc/pykam.cfg does)
	ksr_route_relay()
end

-- route[RELAY]: stateful relay with the transaction routes armed
function ksr_route_relay()
	if KSR.is_method_in("IBSU") then
		if KSR.tm.t_is_set("branch_route") < 0 then
			KSR.tm.t_on_branch("ksr_branch_manage")
		end
	end
	if KSR.is_method_in("ISU") then
		if KSR.tm.t_is_set("onreply_route") < 0 then
			KSR.tm.t_on_reply("ksr_onreply_manage")
		end
	end
	if KSR.is_INVITE() then
		if KSR.tm.t_is_set("failure_route") < 0 then
			KSR.tm.t_on_failure("ksr_failure_manage")
		end
	end
	if KSR.tm.t_relay() < 0 then
		KSR.sl.sl_reply_error()
	end
	KSR.x.exit()
end

-- route[REQINIT]: per-request checks
function ksr_route_reqinit()
	KSR.set_reply_no_connect()
	KSR.force_rport()
	if KSR.maxfwd.mf_process_maxfwd_header(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		KSR.x.exit()
	end
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() and KSR.pv.is_null("$rU") then
		KSR.sl.sl_send_reply(200, "Keepalive")
		KSR.x.exit()
	end
	if KSR.sanity.sanity_check(17895, 7) < 0 then
		KSR.warn("malformed SIP request from " .. KSR.pv.get("$si") .. ":"
			.. KSR.pv.get("$sp") .. "\n")
		KSR.x.exit()
	end
end

-- route[WITHINDLG]: requests inside a dialog
function ksr_route_withindlg()
	if KSR.siputils.has_totag() < 0 then
		return 1
	end
	if KSR.rr.loose_route() > 0 then
		if KSR.is_BYE() then
			KSR.setflag(FLT_ACC)
			KSR.setflag(FLT_ACCFAILED)
		elseif KSR.is_NOTIFY() then
			KSR.rr.record_route()
		end
		ksr_route_relay()
		KSR.x.exit()
	end
	if KSR.is_ACK() then
		if KSR.tm.t_check_trans() > 0 then
			ksr_route_relay()
		end
		KSR.x.exit()
	end
	KSR.sl.sl_send_reply(404, "Not here")
	KSR.x.exit()
end

-- route[REGISTRAR]: REGISTER for local users
function ksr_route_registrar()
	if not KSR.is_REGISTER() then
		return 1
	end
	if KSR.registrar.save("location") < 0 then
		KSR.sl.sl_reply_error()
	end
	KSR.x.exit()
end

-- route[LOCATION]: local users, by the location table
function ksr_route_location()
	local rc = KSR.registrar.lookup("location")
	if rc < 0 then
		KSR.tm.t_newtran()
		if rc == -1 or rc == -3 then
			KSR.sl.send_reply(404, "Not Found")
			KSR.x.exit()
		elseif rc == -2 then
			KSR.sl.send_reply(405, "Method Not Allowed")
			KSR.x.exit()
		end
	end
	if KSR.is_INVITE() then
		KSR.setflag(FLT_ACCMISSED)
	end
	ksr_route_relay()
	KSR.x.exit()
end

-- branch_route[MANAGE_BRANCH]
function ksr_branch_manage()
	KSR.dbg("new branch [" .. KSR.pv.gete("$T_branch_idx") .. "] to "
		.. KSR.pv.gete("$ru") .. "\n")
end

-- onreply_route[MANAGE_REPLY]
function ksr_onreply_manage()
	KSR.dbg("incoming reply " .. KSR.pv.gete("$rs") .. "\n")
end

-- failure_route[MANAGE_FAILURE]: the best reply is relayed upstream
function ksr_failure_manage()
	if KSR.tm.t_is_canceled() > 0 then
		return 1
	end
	KSR.info("call to " .. KSR.pv.gete("$ru") .. " failed with "
		.. KSR.pv.gete("$T_reply_code") .. "\n")
end

-- reply_route: replies that match no transaction are relayed statelessly afterwards
function ksr_reply_route()
	KSR.dbg("reply " .. KSR.pv.gete("$rs") .. " " .. KSR.pv.gete("$rr") .. " for "
		.. KSR.pv.gete("$ci") .. "\n")
end
