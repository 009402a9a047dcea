// Dumps what Apache Kafka says about its broker configs, for gen_broker_configs.py:
//   java -cp 'compat-tests/.jars/*' DumpBrokerConfigs.java <bootstrap> <broker id>
// prints one JSON object: "configdef" (every key of KafkaConfig's ConfigDef: type, default,
// internal flag, documentation) and "describe" (the broker's DescribeConfigs answer with
// synonyms and documentation).
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigResource;

public class DumpBrokerConfigs {
    public static void main(String[] args) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        List<Map<String, Object>> defs = new ArrayList<>();
        ConfigDef def = kafka.server.KafkaConfig$.MODULE$.configDef();
        for (ConfigDef.ConfigKey k : new TreeMap<>(def.configKeys()).values()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", k.name);
            m.put("type", k.type.name());
            boolean has = k.hasDefault();
            m.put("has_default", has);
            m.put("default", has && k.defaultValue != null
                    ? ConfigDef.convertToString(k.defaultValue, k.type) : null);
            m.put("internal", k.internalConfig);
            m.put("doc", k.documentation);
            defs.add(m);
        }
        out.put("configdef", defs);
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        try (Admin admin = Admin.create(p)) {
            ConfigResource r = new ConfigResource(ConfigResource.Type.BROKER, args[1]);
            Config c = admin.describeConfigs(List.of(r),
                    new DescribeConfigsOptions().includeSynonyms(true).includeDocumentation(true))
                .all().get().get(r);
            List<Map<String, Object>> entries = new ArrayList<>();
            for (ConfigEntry e : c.entries()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("name", e.name());
                m.put("value", e.value());
                m.put("source", e.source().name());
                m.put("sensitive", e.isSensitive());
                m.put("read_only", e.isReadOnly());
                m.put("type", e.type().name());
                m.put("doc", e.documentation());
                List<List<String>> syn = new ArrayList<>();
                for (ConfigEntry.ConfigSynonym s : e.synonyms())
                    syn.add(Arrays.asList(s.name(), s.value(), s.source().name()));
                m.put("synonyms", syn);
                entries.add(m);
            }
            out.put("describe", entries);
        }
        System.out.println(new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
    }
}
