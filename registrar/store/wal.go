package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The write-ahead log: the changes after the data file's revision, in segment files
// beside it named <data file>.wal-<first revision, 20 digits>. A commit appends one
// record per revision it makes and fsyncs the segment once (group commit) before any
// write in it is acknowledged, so a commit costs what it changes, not the table.
//
// A record is one line: 8 hex digits of the CRC-32C of the JSON that follows, a
// space, the JSON {"rev": R, "ops": [{"host": "a", "server": {...}}, {"host": "b"}]}
// (an op without "server" removes the name), and "\n". A crash can only spoil the
// end of the last segment: a record without its newline, or zero bytes where the data
// never reached the disk. Such records were never acknowledged and are dropped when
// the store opens. Any other bad record, also a complete last one that fails its
// checksum, is damage, and the store refuses to open, naming file and offset.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// logOp is one change in a record: Server nil removes the server name Name.
type logOp struct {
	Name   string  `json:"host"`
	Server *Server `json:"server,omitempty"`
}

type logRecord struct {
	Rev uint64  `json:"rev"`
	Ops []logOp `json:"ops"`
}

// appendRecord appends r as one line to b.
func appendRecord(b []byte, r logRecord) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return b, err
	}
	b = fmt.Appendf(b, "%08x ", crc32.Checksum(body, castagnoli))
	b = append(b, body...)
	return append(b, '\n'), nil
}

const segmentInfix = ".wal-"

func segmentName(dataPath string, first uint64) string {
	return fmt.Sprintf("%s%s%020d", dataPath, segmentInfix, first)
}

// segment is one log file and the first revision it may hold.
type segment struct {
	path  string
	first uint64
}

// listSegments returns the data file's log segments in revision order.
func listSegments(dataPath string) ([]segment, error) {
	matches, err := filepath.Glob(dataPath + segmentInfix + "*")
	if err != nil {
		return nil, err
	}
	var out []segment
	for _, m := range matches {
		n, err := strconv.ParseUint(strings.TrimPrefix(m, dataPath+segmentInfix), 10, 64)
		if err != nil {
			continue // not ours
		}
		out = append(out, segment{m, n})
	}
	slices.SortFunc(out, func(a, b segment) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	return out, nil
}

// tornTail says where the last segment's intact records end, when a crash left a
// record cut short after them.
type tornTail struct {
	path   string
	offset int64
	reason string
}

// replay reads every segment in order and calls apply for each record after rev,
// requiring the revisions to follow each other without a gap. It returns the
// revision reached, the byte size of the segments, and the torn tail of the last
// segment (nil when it ends cleanly).
//
// A record at or below the starting revision is skipped (a compaction finished
// before its segments were removed). A record whose revision was already applied
// from the log is skipped when it is the same record again, and is damage when its
// content differs: two writers appended to one log.
func replay(segs []segment, rev uint64, apply func(r logRecord, file string) error) (uint64, int64, *tornTail, error) {
	var size int64
	base := rev
	sums := map[uint64]uint32{} // checksum of each record applied, by revision
	for i, sg := range segs {
		last := i == len(segs)-1
		f, err := openRegular(sg.path, os.O_RDONLY, 0, "log segment")
		if err != nil {
			return rev, size, nil, err
		}
		r := bufio.NewReaderSize(f, 1<<20)
		var off int64
		for {
			line, err := r.ReadBytes('\n')
			if err == io.EOF && len(line) == 0 {
				break
			}
			rec, sum, perr := parseRecord(line, err)
			if perr != nil {
				var reason string
				if last {
					reason = tornReason(line, r)
				}
				f.Close()
				if reason != "" {
					return rev, size + off, &tornTail{sg.path, off, reason}, nil
				}
				return rev, size, nil, fmt.Errorf("log %s is damaged at byte %d (%v); restore the data from a backup", sg.path, off, perr)
			}
			off += int64(len(line))
			if rec.Rev <= base {
				continue // already in the data file
			}
			if rec.Rev <= rev {
				if sums[rec.Rev] == sum {
					continue
				}
				f.Close()
				return rev, size, nil, fmt.Errorf("log %s repeats revision %d with other content at byte %d: two registrars wrote to this data (was its lock file removed while one ran?), and writes of one of them would be lost; restore the data from a backup", sg.path, rec.Rev, off-int64(len(line)))
			}
			if rec.Rev != rev+1 {
				f.Close()
				return rev, size, nil, fmt.Errorf("log %s jumps from revision %d to %d at byte %d: revisions are missing; restore the data from a backup", sg.path, rev, rec.Rev, off-int64(len(line)))
			}
			if err := apply(rec, sg.path); err != nil {
				f.Close()
				return rev, size, nil, fmt.Errorf("log %s, revision %d: %v", sg.path, rec.Rev, err)
			}
			rev = rec.Rev
			sums[rev] = sum
		}
		f.Close()
		size += off
	}
	return rev, size, nil, nil
}

// tornReason says why the end of the last segment, from the record that failed
// (line) through what is left in r, is what a crash leaves of records that were
// never acknowledged, or "" when it is damage. A crash can leave a record without
// its newline (cut short) and ranges of zero bytes (space the file system allocated
// that the data never reached, at any place in the record); a record never holds a
// zero byte. A complete line without one that fails was whole when its newline was
// fsynced, so it was acknowledged: that is damage.
func tornReason(line []byte, r *bufio.Reader) string {
	rest, err := io.ReadAll(r)
	if err != nil {
		return ""
	}
	rest = append(line, rest...)
	zeros := false
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break // the last piece, without its newline: cut short
		}
		if bytes.IndexByte(rest[:i], 0) < 0 {
			return ""
		}
		zeros = true
		rest = rest[i+1:]
	}
	if zeros || bytes.IndexByte(rest, 0) >= 0 {
		return "zero-filled: the data never reached the disk"
	}
	return "the record is cut short"
}

// parseRecord checks and decodes one line of the log; it returns the record and its
// checksum.
func parseRecord(line []byte, readErr error) (logRecord, uint32, error) {
	var rec logRecord
	if readErr != nil {
		return rec, 0, errors.New("the record is cut short")
	}
	line = line[:len(line)-1]
	if len(line) < 10 || line[8] != ' ' {
		return rec, 0, errors.New("not a log record")
	}
	sum, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil {
		return rec, 0, errors.New("not a log record")
	}
	body := line[9:]
	if crc32.Checksum(body, castagnoli) != uint32(sum) {
		return rec, 0, errors.New("checksum mismatch")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return rec, 0, fmt.Errorf("record does not parse: %v", err)
	}
	return rec, uint32(sum), nil
}
