package envoycheck

import (
	"maps"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	commondfpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/dynamic_forward_proxy/v3"
	dfpfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	"google.golang.org/protobuf/proto"

	"switchyard/internal/envoyconfig"
)

// checkDFPClusters checks every dynamic forward proxy cluster and returns their DNS
// cache configs by cluster name.
func checkDFPClusters(v *view, ps *problems) map[string]*commondfpv3.DnsCacheConfig {
	dfp := map[string]*commondfpv3.DnsCacheConfig{}
	for _, lc := range v.ClusterList {
		c, path := lc.Msg, lc.Path
		ct := c.GetClusterType()
		if ct == nil {
			continue
		}
		cc := lc.DFP
		if cc == nil {
			if ct.GetName() == dfpClusterType {
				ps.add(RuleDFPClusterType, path+".cluster_type.typed_config",
					"cluster_type %s needs an envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig", dfpClusterType)
			}
			continue
		}
		dfp[c.GetName()] = cc.GetDnsCacheConfig()
		if ct.GetName() != dfpClusterType {
			ps.add(RuleDFPClusterType, path+".cluster_type.name",
				"cluster_type name is %q; the DFP filter ignores routes unless it is exactly %q", ct.GetName(), dfpClusterType)
		}
		if c.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED {
			ps.add(RuleDFPLBPolicy, path+".lb_policy", "lb_policy is %s; a dynamic forward proxy cluster needs CLUSTER_PROVIDED", c.GetLbPolicy())
		}
		if cc.GetAllowInsecureClusterOptions() {
			ps.add(RuleDFPInsecure, path+".cluster_type.typed_config.allow_insecure_cluster_options",
				"allow_insecure_cluster_options turns off SNI and SAN checks toward targets; leave it false")
			continue // Envoy skips the auto_sni rule then
		}
		if _, has := c.GetTypedExtensionProtocolOptions()[envoyconfig.HTTPOptionsKey]; !has {
			continue // Envoy fills in auto_sni and auto_san_validation itself
		}
		up := lc.HTTPOptions.GetUpstreamHttpProtocolOptions()
		if !up.GetAutoSni() || !up.GetAutoSanValidation() {
			ps.add(RuleDFPAutoSNI, path+".typed_extension_protocol_options.upstream_http_protocol_options",
				"Envoy refuses to start: \"dynamic_forward_proxy cluster must have auto_sni and auto_san_validation true "+
					"unless allow_insecure_cluster_options is set\"; set both to true")
		}
	}
	return dfp
}

func checkDNSCache(m envoyconfig.Manager, dfp map[string]*commondfpv3.DnsCacheConfig, ps *problems) {
	for _, f := range m.Filters {
		fc, ok := f.Msg.(*dfpfilterv3.FilterConfig)
		if !ok {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(dfp)) {
			cc := dfp[name]
			if !proto.Equal(fc.GetDnsCacheConfig(), cc) {
				ps.add(RuleDNSCache, f.Path+".dns_cache_config",
					"differs from cluster %s's dns_cache_config; Envoy requires filter and cluster to share the same DNS cache settings "+
						"(use one YAML anchor for both)", name)
			}
		}
	}
}
