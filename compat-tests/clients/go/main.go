// gocompat drives a Kafka broker with a Go client library and prints what it observed as JSON.
//
//	gocompat sarama  --version 2.8.0.0 --bootstrap 127.0.0.1:9092 --topic T --group G
//	gocompat kafkago --bootstrap 127.0.0.1:9092 --topic T --group G
//	gocompat ckgo    --bootstrap 127.0.0.1:9092 --topic T --group G
//
// Every subcommand runs the same scenario with what its library offers: create a topic with
// 3 partitions (and retention.ms=3600000) through the admin API, produce --records records to
// known partitions (record i to partition i%3) collecting the acked (partition, offset),
// consume them in consumer group --group from the earliest offset, describe the group while its
// consumer is active, commit, close the consumer, then read the committed offsets, list
// earliest/latest offsets, list/describe groups, describe the topic's configs and metadata,
// delete the group and the topic. The observations go to stdout as one JSON object; the test
// compares them with what they must be. An error is printed to stderr and exits 1 (with the
// partial result on stdout); a run longer than --deadline seconds exits 2.
package main

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Rec is one consumed record. Keys and values are text when they are valid UTF-8, else
// "hex:" and their bytes in hex (enc); a null key is null. Header values are text the same
// way, a null header value is "" (libraries differ on null vs empty there).
type Rec struct {
	P int32       `json:"p"`
	O int64       `json:"o"`
	T int64       `json:"t"` // timestamp, ms
	K *string     `json:"k"`
	V *string     `json:"v"`
	H [][2]string `json:"h"`
}

// Group is a consumer group as described (DescribeGroups).
type Group struct {
	State        string             `json:"state"`
	ProtocolType string             `json:"protocol_type,omitempty"`
	Protocol     string             `json:"protocol,omitempty"`
	Members      int                `json:"members"`
	Assignment   map[string][]int32 `json:"assignment,omitempty"` // of the only member
}

// Config is one described topic config.
type Config struct {
	Value  string `json:"value"`
	Source string `json:"source"`
}

// Result is everything a scenario observed.
type Result struct {
	Library      string            `json:"library"`
	Version      string            `json:"version,omitempty"` // sarama's Version setting
	Created      string            `json:"created"`
	Produced     [][2]int64        `json:"produced"` // acked (partition, offset), in record order
	Consumed     []Rec             `json:"consumed"` // sorted by (partition, offset)
	ActiveGroup  *Group            `json:"active_group"`
	Committed    map[string]int64  `json:"committed"`
	Earliest     map[string]int64  `json:"earliest,omitempty"`
	Latest       map[string]int64  `json:"latest,omitempty"`
	Listed       map[string]string `json:"listed"` // our group in ListGroups: protocol type (or state)
	EmptyGroup   *Group            `json:"empty_group"`
	Configs      map[string]Config `json:"configs"`
	Partitions   [][3]int32        `json:"partitions"` // (id, leader, replicas count)
	GroupDeleted string            `json:"group_deleted"`
	ListedAfter  bool              `json:"group_listed_after_delete"`
	TopicDeleted string            `json:"topic_deleted"`
	TopicGone    bool              `json:"topic_gone"`
	Notes        []string          `json:"notes,omitempty"`
}

var (
	bootstrap = flag.String("bootstrap", "127.0.0.1:9092", "bootstrap host:port")
	topic     = flag.String("topic", "", "topic to create, use and delete")
	group     = flag.String("group", "", "consumer group")
	version   = flag.String("version", "", "sarama: the Kafka version setting (e.g. 2.1.0.0)")
	records   = flag.Int("records", 60, "records to produce")
	tsBase    = flag.Int64("ts-base", 1700000000000, "timestamp of record 0, ms")
	deadline  = flag.Float64("deadline", 50, "seconds before the whole run is abandoned (exit 2)")
	opTimeout = 10 * time.Second
	// consumeTimeout bounds reading the records in the group (a few seconds normally, the
	// group's first join included)
	consumeTimeout = 20 * time.Second
	// quiet is how long a consumer keeps reading after the last expected record: anything it
	// gets then is a record too many (and fails the exact comparison).
	quiet = 500 * time.Millisecond
)

// ConfigNames are the topic configs reported (retention.ms is set at creation).
var ConfigNames = []string{"cleanup.policy", "retention.ms", "max.message.bytes"}

const Partitions = 3

var (
	resMu sync.Mutex
	res   = &Result{Committed: map[string]int64{}, Listed: map[string]string{}, Configs: map[string]Config{}}
)

// Record i of the scenario: key "key-<i>" (null for i%20 == 13), value "value-<i>-é✓" (6 binary
// bytes for i%10 == 7), headers idx=<i>, dup=a<i>, dup=b<i> (a repeated key), empty="" and
// lib=<library>, timestamp --ts-base + i ms, partition i%3.
func key(i int) []byte {
	if i%20 == 13 {
		return nil
	}
	return []byte(fmt.Sprintf("key-%d", i))
}
func value(i int) []byte {
	if i%10 == 7 {
		return []byte{0x00, 0xFF, 0x80, byte(i), 0x0A, 0x09}
	}
	return []byte(fmt.Sprintf("value-%d-\u00e9\u2713", i))
}
func headers(i int) [][2]string {
	return [][2]string{{"idx", strconv.Itoa(i)}, {"dup", fmt.Sprintf("a%d", i)},
		{"dup", fmt.Sprintf("b%d", i)}, {"empty", ""}, {"lib", res.Library}}
}
func partitionOf(i int) int32     { return int32(i % Partitions) }
func timestampOf(i int) time.Time { return time.UnixMilli(*tsBase + int64(i)) }

func enc(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	if !utf8.Valid(b) || strings.ContainsRune(s, 0) {
		s = "hex:" + hex.EncodeToString(b)
	}
	return &s
}

func encHeader(b []byte) string {
	if b == nil {
		return ""
	}
	return *enc(b)
}

var noteCount = map[string]int{}

// note records an error the library reported on its errors channel (and retried): each
// distinct text once, with its count, at most 20.
func note(msg string) {
	resMu.Lock()
	defer resMu.Unlock()
	noteCount[msg]++
	if noteCount[msg] == 1 && len(res.Notes) < 20 {
		res.Notes = append(res.Notes, msg)
	}
}

func printResult() {
	resMu.Lock()
	defer resMu.Unlock()
	for i, n := range res.Notes {
		if c := noteCount[n]; c > 1 {
			res.Notes[i] = fmt.Sprintf("%s (x%d)", n, c)
		}
	}
	sort.Slice(res.Consumed, func(a, b int) bool {
		if res.Consumed[a].P != res.Consumed[b].P {
			return res.Consumed[a].P < res.Consumed[b].P
		}
		return res.Consumed[a].O < res.Consumed[b].O
	})
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// fail prints the partial result and the error and exits 1.
func fail(step string, err error) {
	printResult()
	fmt.Fprintf(os.Stderr, "%s: %s: %v\n", res.Library, step, err)
	os.Exit(1)
}

var start = time.Now()

// trace prints a step's time since the start to stderr when GOCOMPAT_TRACE is set.
func trace(step string) {
	if os.Getenv("GOCOMPAT_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "%6.3fs %s\n", time.Since(start).Seconds(), step)
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func pstr(p int32) string { return strconv.Itoa(int(p)) }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gocompat sarama|kafkago|ckgo --bootstrap H:P --topic T --group G [--version V]")
		os.Exit(64)
	}
	cmd := os.Args[1]
	if err := flag.CommandLine.Parse(os.Args[2:]); err != nil {
		os.Exit(64)
	}
	if *topic == "" || *group == "" {
		fmt.Fprintln(os.Stderr, "--topic and --group are required")
		os.Exit(64)
	}
	res.Library = cmd
	go func() {
		time.Sleep(time.Duration(*deadline * float64(time.Second)))
		printResult()
		fmt.Fprintf(os.Stderr, "%s: deadline of %.0fs exceeded\n", cmd, *deadline)
		os.Exit(2)
	}()
	switch cmd {
	case "sarama":
		runSarama()
	case "kafkago":
		runKafkaGo()
	case "ckgo":
		runCKGo()
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n", cmd)
		os.Exit(64)
	}
	printResult()
}
