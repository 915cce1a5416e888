// Readiness probe for the test Kafka broker, run by scripts/testenv/kafka.sh
// with Java's single-file source launcher:
//
//   java -cp "<kafka libs>/*" Ready.java BOOTSTRAP TIMEOUT_SECONDS BROKER_PID
//
// Succeeds once the broker answers a metadata request (DescribeCluster lists
// it and knows the controller) and the controller accepts a validate-only
// CreateTopics. Fails fast when BROKER_PID exits.
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.Node;

public class Ready {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
        long pid = Long.parseLong(args[2]);

        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
        p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "livecore-testenv-ready");

        Throwable last = null;
        try (Admin admin = Admin.create(p)) {
            while (System.nanoTime() < deadline) {
                if (!ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                    System.err.println("Ready: broker process " + pid + " exited");
                    System.exit(2);
                }
                try {
                    DescribeClusterResult dc = admin.describeCluster();
                    Collection<Node> nodes = dc.nodes().get(5, TimeUnit.SECONDS);
                    Node controller = dc.controller().get(5, TimeUnit.SECONDS);
                    if (!nodes.isEmpty() && controller != null && !controller.isEmpty()) {
                        admin.createTopics(
                                List.of(new NewTopic("livecore-testenv-ready-probe", 1, (short) 1)),
                                new CreateTopicsOptions().validateOnly(true))
                            .all().get(5, TimeUnit.SECONDS);
                        System.out.println("ready: " + nodes.size() + " broker(s), controller " + controller.idString());
                        return;
                    }
                    last = new IllegalStateException("no brokers/controller in metadata yet");
                } catch (Exception e) {
                    last = e;
                }
                Thread.sleep(250);
            }
        }
        System.err.println("Ready: broker at " + bootstrap + " not ready in time; last error: " + last);
        System.exit(1);
    }
}
