package envoyconfig

import (
	"maps"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	dfpclusterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	commondfpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/dynamic_forward_proxy/v3"
	dfpfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
)

// checkDFPClusters checks every dynamic forward proxy cluster and returns their DNS
// cache configs by cluster name.
func checkDFPClusters(v *view, ps *problems) map[string]*commondfpv3.DnsCacheConfig {
	dfp := map[string]*commondfpv3.DnsCacheConfig{}
	for _, lc := range v.clusterList {
		c, path := lc.msg, lc.path
		ct := c.GetClusterType()
		if ct == nil {
			continue
		}
		cc, ok := v.unpack(ct.GetTypedConfig(), path+".cluster_type").(*dfpclusterv3.ClusterConfig)
		if !ok {
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
		a, has := c.GetTypedExtensionProtocolOptions()[httpOptionsKey]
		if !has {
			continue // Envoy fills in auto_sni and auto_san_validation itself
		}
		opts, _ := v.unpack(a, path+".typed_extension_protocol_options").(*upstreamhttpv3.HttpProtocolOptions)
		up := opts.GetUpstreamHttpProtocolOptions()
		if !up.GetAutoSni() || !up.GetAutoSanValidation() {
			ps.add(RuleDFPAutoSNI, path+".typed_extension_protocol_options.upstream_http_protocol_options",
				"Envoy refuses to start: \"dynamic_forward_proxy cluster must have auto_sni and auto_san_validation true "+
					"unless allow_insecure_cluster_options is set\"; set both to true")
		}
	}
	return dfp
}

func checkDNSCache(m manager, dfp map[string]*commondfpv3.DnsCacheConfig, ps *problems) {
	for _, f := range m.filters {
		fc, ok := f.msg.(*dfpfilterv3.FilterConfig)
		if !ok {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(dfp)) {
			cc := dfp[name]
			if !proto.Equal(fc.GetDnsCacheConfig(), cc) {
				ps.add(RuleDNSCache, f.path+".dns_cache_config",
					"differs from cluster %s's dns_cache_config; Envoy requires filter and cluster to share the same DNS cache settings "+
						"(use one YAML anchor for both)", name)
			}
		}
	}
}
