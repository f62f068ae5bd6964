package envoycheck

import (
	"bytes"
	"time"

	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"

	"switchyard/internal/envoyconfig"
	"switchyard/internal/pluginconfig"
)

func checkWasm(v *view, ps *problems) {
	if len(v.Services) != 1 {
		ps.add(RuleWasmService, "bootstrap_extensions",
			"want exactly one envoy.bootstrap.wasm WasmService (the sync root), found %d", len(v.Services))
		if len(v.Services) == 0 {
			return
		}
	}
	svc := v.Services[0]
	if !svc.Msg.GetSingleton() {
		ps.add(RuleSingleton, svc.Path+".singleton",
			"the sync service must be singleton: true, or every worker polls the registrar on its own")
	}
	sc := svc.Msg.GetConfig()
	checkPlugin(sc, svc.Path+".config", syncRootID, ps)
	svm := sc.GetVmConfig()
	if svm.GetVmId() == "" {
		ps.add(RuleVMID, svc.Path+".config.vm_config.vm_id", "set a vm_id; the router filter must use the same one to see the sync's shared data")
	}
	if svm.GetCode().GetLocal().GetFilename() == "" {
		ps.add(RuleWasmCode, svc.Path+".config.vm_config.code", "load the module from a local file (code.local.filename)")
	}
	for _, wf := range v.WasmFilters {
		fc := wf.Msg.GetConfig()
		path := wf.Path + ".config"
		checkPlugin(fc, path, routerRootID, ps)
		fvm := fc.GetVmConfig()
		if fvm.GetVmId() != svm.GetVmId() {
			ps.add(RuleVMID, path+".vm_config.vm_id",
				"vm_id %q differs from the sync service's %q; shared data is per vm_id, so the router would never see the table",
				fvm.GetVmId(), svm.GetVmId())
		}
		if f, s := fvm.GetCode().GetLocal().GetFilename(), svm.GetCode().GetLocal().GetFilename(); f != s {
			ps.add(RuleWasmCode, path+".vm_config.code",
				"the filter loads %q but the sync service loads %q; both roots must come from the same .wasm", f, s)
		}
	}
}

// checkPlugin holds the rules for one root: its root id, the runtime and fail-closed.
func checkPlugin(pc *wasmv3.PluginConfig, path, rootID string, ps *problems) {
	if pc.GetRootId() != rootID {
		ps.add(RuleRootID, path+".root_id", "root_id is %q, want %q", pc.GetRootId(), rootID)
	}
	if rt := pc.GetVmConfig().GetRuntime(); rt != v8Runtime {
		ps.add(RuleWasmRuntime, path+".vm_config.runtime", "runtime is %q, want %q (the runtime of Envoy's release builds)", rt, v8Runtime)
	}
	// fail_open is deprecated in favour of failure_policy, but Envoy still honours it,
	// so a file that sets it must still be refused.
	//lint:ignore SA1019 read on purpose (see above)
	if pc.GetFailOpen() {
		ps.add(RuleFailOpen, path+".fail_open",
			"fail_open lets requests bypass a failed VM; on /sys the DFP would then forward to the client's own Host. Remove it")
	}
	switch fp := pc.GetFailurePolicy(); fp {
	case wasmv3.FailurePolicy_UNSPECIFIED, wasmv3.FailurePolicy_FAIL_CLOSED:
	default:
		ps.add(RuleFailOpen, path+".failure_policy",
			"failure_policy %s is not fail-closed; leave it unset (FAIL_CLOSED) so a failed VM answers 503 instead of letting requests through", fp)
	}
}

// checkPluginConfig checks the JSON both roots receive and returns the router's copy;
// ok is false when it cannot be read.
func checkPluginConfig(v *view, ps *problems) (pc pluginconfig.Config, ok bool) {
	if len(v.Services) == 0 || len(v.WasmFilters) == 0 {
		return pc, false // reported by checkWasm / checkChain
	}
	read := func(c *wasmv3.PluginConfig, path string) ([]byte, bool) {
		if c.GetConfiguration() == nil {
			ps.add(RulePluginConfig, path+".config.configuration", "%v", envoyconfig.ErrNoConfiguration)
			return nil, false
		}
		b, err := envoyconfig.ConfigurationBytes(c)
		if err != nil {
			ps.add(RulePluginConfig, path+".config.configuration", "%v", err)
			return nil, false
		}
		return b, true
	}
	svc, wf := v.Services[0], v.WasmFilters[0]
	sync, syncOK := read(svc.Msg.GetConfig(), svc.Path)
	router, routerOK := read(wf.Msg.GetConfig(), wf.Path)
	if syncOK && routerOK && !bytes.Equal(sync, router) {
		ps.add(RulePluginConfig, wf.Path+".config.configuration",
			"the router's configuration differs from the sync service's; give both the same text (a YAML anchor does that)")
	}
	if syncOK {
		if _, err := pluginconfig.Parse(sync); err != nil {
			ps.add(RulePluginConfig, svc.Path+".config.configuration", "%v", err)
		}
	}
	if !routerOK {
		return pc, false
	}
	pc, err := pluginconfig.Parse(router)
	if err != nil {
		ps.add(RulePluginConfig, wf.Path+".config.configuration", "%v", err)
		return pc, false
	}
	return pc, true
}

func checkRegistrar(v *view, pc pluginconfig.Config, ps *problems) {
	name := pc.Registrar.Cluster
	c, ok := v.Clusters[name]
	if !ok {
		ps.add(RuleRegistrar, "configuration.registrar.cluster",
			"the sync polls cluster %q, which is not defined; name the registrar's cluster", name)
		return
	}
	wait := time.Duration(pc.Registrar.WaitSeconds) * time.Second
	need := wait + callMargin
	common := c.HTTPOptions.GetCommonHttpProtocolOptions()
	for _, limit := range []struct {
		field string
		d     time.Duration
	}{
		{"idle_timeout", common.GetIdleTimeout().AsDuration()},
		{"max_stream_duration", common.GetMaxStreamDuration().AsDuration()},
	} {
		field, d := limit.field, limit.d
		if d > 0 && d <= need {
			ps.add(RuleRegistrar, "static_resources.clusters["+name+"].typed_extension_protocol_options.common_http_protocol_options."+field,
				"%s %v cuts the sync's long-poll (held %v, call timeout %v); make it longer than %v", field, d, wait, need, need)
		}
	}
}
