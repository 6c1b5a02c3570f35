// A sarama (Go) client run against a raftq broker by tests/sarama_test.ts:
// its cluster admin creates a topic, an idempotent sync producer sends
// COUNT keyed messages with acks=all, a consumer group member reads them
// all and commits, and a second member of the same group, started after
// one more message, gets only that one. It prints one JSON object with
// what it produced and consumed, and exits non-zero on any error.
//
// Usage: sarama_roundtrip BOOTSTRAP TOPIC GROUP COUNT
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type record struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Value     string `json:"value"`
}

// reader collects what a group member is given until it has `want`.
type reader struct {
	want int
	mu   sync.Mutex
	got  []record
	done chan struct{}
	once sync.Once
}

func (r *reader) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (r *reader) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (r *reader) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		r.mu.Lock()
		r.got = append(r.got, record{m.Partition, m.Offset, string(m.Key), string(m.Value)})
		enough := len(r.got) >= r.want
		r.mu.Unlock()
		s.MarkMessage(m, "")
		if enough {
			r.once.Do(func() { close(r.done) })
		}
	}
	return nil
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
	os.Exit(1)
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "sarama-roundtrip"
	c.Version = sarama.V2_1_0_0
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	return c
}

// consume runs one group member until it got `want` messages, then leaves.
func consume(brokers []string, topic, group string, want int) []record {
	g, err := sarama.NewConsumerGroup(brokers, group, config())
	if err != nil {
		fail("consumer group", err)
	}
	r := &reader{want: want, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, r); err != nil {
				errs <- err
				return
			}
		}
	}()
	select {
	case <-r.done:
	case err := <-errs:
		fail("consume", err)
	case <-time.After(30 * time.Second):
		fail("consume", fmt.Errorf("only %d of %d messages in 30 s", len(r.got), want))
	}
	cancel()
	// Closing commits the marked offsets and leaves the group.
	if err := g.Close(); err != nil {
		fail("close group", err)
	}
	return r.got
}

func main() {
	if len(os.Args) != 5 {
		fail("usage", fmt.Errorf("sarama_roundtrip BOOTSTRAP TOPIC GROUP COUNT"))
	}
	brokers := []string{os.Args[1]}
	topic, group := os.Args[2], os.Args[3]
	count, err := strconv.Atoi(os.Args[4])
	if err != nil {
		fail("count", err)
	}

	admin, err := sarama.NewClusterAdmin(brokers, config())
	if err != nil {
		fail("cluster admin", err)
	}
	detail := &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}
	if err := admin.CreateTopic(topic, detail, false); err != nil {
		fail("create topic", err)
	}
	admin.Close()

	producer, err := sarama.NewSyncProducer(brokers, config())
	if err != nil {
		fail("producer", err)
	}
	send := func(i int) record {
		m := &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("k%d", i)),
			Value: sarama.StringEncoder(fmt.Sprintf("v%d", i)),
		}
		partition, offset, err := producer.SendMessage(m)
		if err != nil {
			fail("send", err)
		}
		return record{partition, offset, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)}
	}
	var produced []record
	for i := 0; i < count; i++ {
		produced = append(produced, send(i))
	}
	consumed := consume(brokers, topic, group, count)
	produced = append(produced, send(count))
	resumed := consume(brokers, topic, group, 1)
	producer.Close()

	out, _ := json.Marshal(map[string][]record{
		"produced": produced,
		"consumed": consumed,
		"resumed":  resumed,
	})
	fmt.Println(string(out))
}
