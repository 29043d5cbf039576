package main

import (
	"bufio"
	"encoding/binary"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/FerretDB/wire/wirebson"
)

func raw(t *testing.T, pairs ...any) wirebson.RawDocument {
	t.Helper()
	d, err := wirebson.MustDocument(pairs...).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestIdsOf(t *testing.T) {
	oid := wirebson.ObjectID{1, 2, 3}
	cases := []struct {
		name   string
		filter wirebson.RawDocument
		ids    []string
		ok     bool
	}{
		{"string", raw(t, "_id", "a", "state", "planned"), []string{"s:a"}, true},
		{"object id", raw(t, "_id", oid), []string{"o:" + string(oid[:])}, true},
		{"numbers of any type are one key", raw(t, "_id", int32(1)), []string{"n:1"}, true},
		{"float", raw(t, "_id", 1.0), []string{"n:1"}, true},
		{"int64", raw(t, "_id", int64(1)), []string{"n:1"}, true},
		{"$eq", raw(t, "_id", wirebson.MustDocument("$eq", "a")), []string{"s:a"}, true},
		{"$in", raw(t, "state", "x", "_id", wirebson.MustDocument("$in", wirebson.MustArray("a", "b"))), []string{"s:a", "s:b"}, true},
		{"empty $in", raw(t, "_id", wirebson.MustDocument("$in", wirebson.MustArray())), []string{}, true},
		{"embedded document", raw(t, "_id", wirebson.MustDocument("a", int32(1))), []string{"D"}, true},
		{"no _id", raw(t, "state", "planned"), nil, false},
		{"no filter", nil, nil, false},
		{"range", raw(t, "_id", wirebson.MustDocument("$gt", "a")), nil, false},
		{"two operators", raw(t, "_id", wirebson.MustDocument("$gte", "a", "$lte", "b")), nil, false},
		{"regex", raw(t, "_id", wirebson.Regex{Pattern: "^a"}), []string{""}, false},
		{"regex in $in", raw(t, "_id", wirebson.MustDocument("$in", wirebson.MustArray("a", wirebson.Regex{Pattern: "^a"}))), nil, false},
	}
	for _, c := range cases {
		ids, ok := idsOf(c.filter)
		if ok != c.ok || (ok && !reflect.DeepEqual(ids, c.ids)) {
			t.Errorf("%s: got %q %v, want %q %v", c.name, ids, ok, c.ids, c.ok)
		}
	}
}

// message builds an OP_MSG request: section 0, then kind-1 sections given as identifier and documents.
func message(t *testing.T, spec wirebson.RawDocument, seqID string, seq ...wirebson.RawDocument) []byte {
	t.Helper()
	body := []byte{0, 0, 0, 0, 0}
	body = append(body, spec...)
	if seqID != "" {
		sec := append([]byte(seqID), 0)
		for _, d := range seq {
			sec = append(sec, d...)
		}
		body = append(body, 1)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(sec)+4))
		body = append(body, sec...)
	}
	out := binary.LittleEndian.AppendUint32(nil, uint32(16+len(body)))
	out = binary.LittleEndian.AppendUint32(out, 7)
	out = binary.LittleEndian.AppendUint32(out, 0)
	out = binary.LittleEndian.AppendUint32(out, opMsg)
	return append(out, body...)
}

func TestPlan(t *testing.T) {
	g := newWriteGate(locksID, 2, 100, slog.Default())
	upd := func(id string) wirebson.RawDocument {
		return raw(t, "q", wirebson.MustDocument("_id", id), "u", wirebson.MustDocument("$inc", wirebson.MustDocument("n", int32(1))))
	}

	if p := g.plan(message(t, raw(t, "find", "c", "filter", wirebson.MustDocument(), "$db", "d"), "")); p != nil {
		t.Fatalf("a find is not a write: %+v", p)
	}

	// Statements in the body.
	p := g.plan(message(t, raw(t, "update", "c", "updates", wirebson.MustArray(upd("b"), upd("a"), upd("b")), "$db", "d"), ""))
	if p == nil || p.cmd != "update" || p.ns != "d\x00c" || len(p.stmts) != 3 {
		t.Fatalf("update in the body: %+v", p)
	}
	if ls := p.locks(0, 3); ls.all || !reflect.DeepEqual(ls.ids, []string{"s:a", "s:b"}) {
		t.Errorf("locks: %+v", ls)
	}

	// Statements in a document sequence; one by another filter locks the collection.
	p = g.plan(message(t, raw(t, "update", "c", "$db", "d"), "updates", upd("a"), raw(t, "q", wirebson.MustDocument("state", "x"), "u", wirebson.MustDocument())))
	if p == nil || len(p.stmts) != 2 {
		t.Fatalf("update in a sequence: %+v", p)
	}
	if ls := p.locks(0, 1); ls.all {
		t.Errorf("first statement alone: %+v", ls)
	}
	if ls := p.locks(0, 2); !ls.all {
		t.Errorf("with a statement by another filter: %+v", ls)
	}

	// findAndModify (either spelling), delete, insert.
	for _, name := range []string{"findAndModify", "findandmodify"} {
		p = g.plan(message(t, raw(t, name, "c", "query", wirebson.MustDocument("_id", "a", "state", "planned"), "$db", "d"), ""))
		if p == nil || p.cmd != "findAndModify" || !reflect.DeepEqual(p.locks(0, 1).ids, []string{"s:a"}) {
			t.Errorf("%s: %+v", name, p)
		}
	}
	p = g.plan(message(t, raw(t, "delete", "c", "deletes", wirebson.MustArray(raw(t, "q", wirebson.MustDocument("_id", "a"), "limit", int32(1))), "$db", "d"), ""))
	if p == nil || !reflect.DeepEqual(p.locks(0, 1).ids, []string{"s:a"}) {
		t.Errorf("delete: %+v", p)
	}
	p = g.plan(message(t, raw(t, "insert", "c", "$db", "d"), "documents", raw(t, "_id", "x", "n", int32(1)), raw(t, "n", int32(2))))
	if ls := p.locks(0, 2); p == nil || ls.all || !reflect.DeepEqual(ls.ids, []string{"s:x"}) {
		t.Errorf("insert: %+v", p)
	}

	// With locksCollection every write but an insert takes the write side.
	gc := newWriteGate(locksCollection, 2, 100, slog.Default())
	if p = gc.plan(message(t, raw(t, "update", "c", "updates", wirebson.MustArray(upd("a")), "$db", "d"), "")); !p.locks(0, 1).all {
		t.Errorf("collection mode, update: %+v", p)
	}
	p = gc.plan(message(t, raw(t, "insert", "c", "documents", wirebson.MustArray(raw(t, "_id", "x")), "$db", "d"), ""))
	if ls := p.locks(0, 1); ls.all || len(ls.ids) != 0 {
		t.Errorf("collection mode, insert: %+v", ls)
	}
}

// TestChunkedUpdate runs an update of 5 statements through a gate that splits updates in parts
// of 2, against a fake FerretDB that reports each statement as matched, the third as upserted,
// and a write error on the fifth.
func TestChunkedUpdate(t *testing.T) {
	g := newWriteGate(locksID, 2, 100, slog.Default())
	client, proxySide := net.Pipe()
	upstream, fake := net.Pipe()
	defer client.Close()
	go func() { _ = g.handle(proxySide, func() (net.Conn, error) { return upstream, nil }) }()

	var pieces [][]int
	var maxPiece atomic.Int32
	go func() {
		r, w := bufio.NewReader(fake), bufio.NewWriter(fake)
		seen := 0
		for {
			req, err := readMessage(r)
			if err != nil {
				return
			}
			p := g.plan(req)
			var idx []int
			res := wirebson.MakeDocument(4)
			upserted := wirebson.MakeArray(0)
			var writeErrors *wirebson.Array
			n := int32(0)
			for range p.stmts {
				idx = append(idx, seen)
				if seen == 2 {
					_ = upserted.Add(wirebson.MustDocument("index", int32(0), "_id", "new"))
				}
				if seen == 4 {
					writeErrors = wirebson.MustArray(wirebson.MustDocument("index", int32(0), "code", int32(14), "errmsg", "bad $inc"))
					break
				}
				n++
				seen++
			}
			raise(&maxPiece, int32(len(p.stmts)))
			pieces = append(pieces, idx)
			if writeErrors != nil {
				_ = res.Add("ok", float64(1))
				_ = res.Add("writeErrors", writeErrors)
			} else {
				_ = res.Add("n", n)
				if upserted.Len() > 0 {
					_ = res.Add("upserted", upserted)
				}
				_ = res.Add("nModified", n)
				_ = res.Add("ok", float64(1))
			}
			out, _ := opMsgMessage(res, 99, binary.LittleEndian.Uint32(req[4:8]))
			_, _ = w.Write(out)
			_ = w.Flush()
		}
	}()

	stmts := wirebson.MakeArray(5)
	for i := range 5 {
		_ = stmts.Add(raw(t, "q", wirebson.MustDocument("_id", string(rune('a'+i))), "u", wirebson.MustDocument("$set", wirebson.MustDocument("x", int32(i)))))
	}
	cw, cr := bufio.NewWriter(client), bufio.NewReader(client)
	_, _ = cw.Write(message(t, raw(t, "update", "c", "updates", stmts, "ordered", true, "$db", "d"), ""))
	_ = cw.Flush()
	res, err := readMessage(cr)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(res[8:12]); got != 7 {
		t.Errorf("responseTo %d, want the request's id 7", got)
	}
	doc := replyDocument(res)
	if doc == nil {
		t.Fatal("no reply document")
	}
	if n, m := doc.Get("n"), doc.Get("nModified"); n != int32(4) || m != int32(4) {
		t.Errorf("n %v, nModified %v: want 4 and 4", n, m)
	}
	up, _ := asArrayDocs(doc.Get("upserted"))
	if len(up) != 1 || up[0].Get("index") != int32(0) || up[0].Get("_id") != "new" {
		t.Errorf("upserted: %v", doc.Get("upserted"))
	}
	we, _ := asArrayDocs(doc.Get("writeErrors"))
	if len(we) != 1 || we[0].Get("index") != int32(4) || we[0].Get("code") != int32(14) {
		t.Errorf("writeErrors: %v", doc.Get("writeErrors"))
	}
	if !reflect.DeepEqual(pieces, [][]int{{0, 1}, {2, 3}, {4}}) || maxPiece.Load() != 2 {
		t.Errorf("pieces sent: %v", pieces)
	}
}

func asArrayDocs(v any) ([]*wirebson.Document, bool) {
	r, ok := v.(wirebson.RawArray)
	if !ok {
		return nil, false
	}
	arr, err := r.Decode()
	if err != nil {
		return nil, false
	}
	var out []*wirebson.Document
	for v := range arr.Values() {
		d, err := asDocument(v)
		if err != nil {
			return nil, false
		}
		out = append(out, d)
	}
	return out, true
}

// TestLocks checks the exclusions: one _id at a time, different _ids together, the write side alone.
func TestLocks(t *testing.T) {
	g := newWriteGate(locksID, 0, 100, slog.Default())
	var inA, inAny, maxA, maxAny atomic.Int32
	var wg sync.WaitGroup
	enter := func(ls lockSet, counters ...*atomic.Int32) {
		defer wg.Done()
		release := g.acquire(ls)
		defer release()
		for _, c := range counters {
			c.Add(1)
		}
		raise(&maxA, inA.Load())
		raise(&maxAny, inAny.Load())
		for range 1000 {
			_ = inAny.Load()
		}
		for _, c := range counters {
			c.Add(-1)
		}
	}
	for i := range 200 {
		wg.Add(3)
		go enter(lockSet{ns: "c", ids: []string{"a", "b"}}, &inA, &inAny)
		go enter(lockSet{ns: "c", ids: []string{"a"}}, &inA, &inAny)
		if i%10 == 0 {
			go enter(lockSet{ns: "c", all: true}, &inA, &inAny)
		} else {
			go enter(lockSet{ns: "c", ids: []string{"z"}}, &inAny)
		}
	}
	wg.Wait()
	if maxA.Load() != 1 {
		t.Errorf("writes of _id a overlapped: %d at once", maxA.Load())
	}
	if len(g.colls) != 0 {
		t.Errorf("locks left behind: %v", g.colls)
	}
}

func raise(m *atomic.Int32, v int32) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}

func BenchmarkPlan(b *testing.B) {
	t := &testing.T{}
	g := newWriteGate(locksID, 50, 100, slog.Default())
	doc := func(i int) wirebson.RawDocument {
		return raw(t, "_id", "inc_bench|outage|sub_0000001|sms:+393470000001"+string(rune('a'+i%26))+string(rune('a'+i/26%26)), "incidentId", "inc_bench", "kind", "outage",
			"subscriberId", "sub_0000001", "channel", "sms", "to", "+393470000001", "language", "it", "state", "planned", "attempts", int32(0),
			"history", wirebson.MustArray(wirebson.MustDocument("state", "planned", "note", "x")), "page", int32(1))
	}
	docs := make([]wirebson.RawDocument, 1000)
	for i := range docs {
		docs[i] = doc(i)
	}
	insert := message(t, raw(t, "insert", "deliveries", "ordered", false, "$db", "d"), "documents", docs...)
	stmts := wirebson.MakeArray(50)
	for i := range 50 {
		_ = stmts.Add(raw(t, "q", wirebson.MustDocument("_id", "id"+string(rune('a'+i)), "state", wirebson.MustDocument("$in", wirebson.MustArray("planned"))),
			"u", wirebson.MustDocument("$set", wirebson.MustDocument("state", "accepted"), "$push", wirebson.MustDocument("history", wirebson.MustDocument("state", "accepted")))))
	}
	update := message(t, raw(t, "update", "deliveries", "updates", stmts, "ordered", false, "$db", "d"), "")
	find := message(t, raw(t, "find", "deliveries", "filter", wirebson.MustDocument("_id", "a"), "$db", "d"), "")
	b.Run("insert of 1000", func(b *testing.B) {
		for b.Loop() {
			_ = g.plan(insert).locks(0, 1000)
		}
	})
	b.Run("update of 50", func(b *testing.B) {
		for b.Loop() {
			_ = g.plan(update).locks(0, 50)
		}
	})
	b.Run("find", func(b *testing.B) {
		for b.Loop() {
			_ = g.plan(find)
		}
	})
}

// TestField reads a field placed after values of every type field skips over.
func TestField(t *testing.T) {
	d := raw(t,
		"f", 1.5, "s", "str", "doc", wirebson.MustDocument("a", int32(1)), "arr", wirebson.MustArray("x"),
		"bin", wirebson.Binary{B: []byte{1, 2}, Subtype: wirebson.BinaryUser}, "oid", wirebson.ObjectID{1},
		"b", true, "null", wirebson.Null, "re", wirebson.Regex{Pattern: "a", Options: "i"}, "i", int32(3),
		"ts", wirebson.Timestamp(9), "l", int64(4),
		"_id", "last",
	)
	if v, err := field(d, "_id"); err != nil || v != "last" {
		t.Errorf("_id: %v %v", v, err)
	}
	if v, err := field(d, "doc"); err != nil || !reflect.DeepEqual(v, raw(t, "a", int32(1))) {
		t.Errorf("doc: %v %v", v, err)
	}
	if v, err := field(d, "missing"); err != nil || v != nil {
		t.Errorf("missing: %v %v", v, err)
	}
	if _, err := field(d[:len(d)-3], "_id"); err == nil {
		t.Error("a truncated document is not an error")
	}
}

func TestEndSessions(t *testing.T) {
	g := newWriteGate(locksID, 2, 100, slog.Default())
	req := message(t, raw(t, "endSessions", wirebson.MustArray(wirebson.MustDocument("id", "x")), "$db", "admin"), "")
	// Answered by the proxy: FerretDB (here nil reader and writer) never sees it.
	res, err := g.roundTrip(req, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if to := binary.LittleEndian.Uint32(res[8:12]); to != 7 {
		t.Errorf("responseTo %d, want the request's id 7", to)
	}
	doc := replyDocument(res)
	if doc == nil || number(doc.Get("ok")) != 1 {
		t.Errorf("reply %v, want {ok: 1}", doc)
	}
	if isEndSessions(message(t, raw(t, "find", "endSessions", "$db", "d"), "")) {
		t.Error("a find of a collection named endSessions is not endSessions")
	}
}
