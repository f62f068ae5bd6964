package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// tempPattern names the temporary files a replacement writes next to the data file.
// Only files matching it are ever removed by cleanStaleTemps.
func tempPattern(dataPath string) string {
	return filepath.Base(dataPath) + ".tmp-*"
}

// replaceFileWith makes what write writes (through a buffer, so that a large file
// need not be held in memory) the content of path, so that a crash at any moment
// leaves either the old content or the new one, never a mix: the bytes go to a
// temporary file in the same directory, which is fsynced, renamed over path, and then
// the directory is fsynced so the rename itself survives a power loss. Missing parent
// directories are created (and made durable too). It returns only once all of that
// has succeeded.
func replaceFileWith(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := mkdirAllDurable(dir); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, tempPattern(path))
	if err != nil {
		return fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err = write(bw); err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp.Name(), path, err)
	}
	return syncDir(dir)
}

// mkdirAllDurable creates dir and its missing parents, fsyncing each new entry's
// parent so the directories survive a crash along with the file put in them.
func mkdirAllDurable(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check data directory %s: %w", d, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data directory %s: %w", dir, err)
	}
	for _, d := range missing {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// cleanStaleTemps removes temporary files that a replacement interrupted by a crash
// left behind. They never hold acknowledged data: a write is acknowledged only after
// its temporary file has been renamed over the data file.
func cleanStaleTemps(dataPath string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(dataPath), tempPattern(dataPath)))
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, m := range matches {
		if !strings.HasPrefix(filepath.Base(m), filepath.Base(dataPath)+".tmp-") {
			continue
		}
		if err := os.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove stale temporary file %s: %w", m, err)
		}
		removed = append(removed, m)
	}
	return removed, nil
}

// StaleTemps lists the temporary files a replacement of the data file at dataPath
// has left (none once a store has opened it).
func StaleTemps(dataPath string) ([]string, error) {
	return filepath.Glob(filepath.Join(filepath.Dir(dataPath), tempPattern(dataPath)))
}

// openRegular opens one of the store's own files (data file, lock file, log segment;
// what names it in errors) without following a symbolic link at path and only when it
// is a regular file. A linked data file would be replaced by a regular one at the
// first compaction (the data silently leaving the link's volume, the log beside the
// target never read), and a linked lock file would have its target overwritten; a
// linked folder above the files is fine. A missing file gives an error that
// errors.Is(fs.ErrNotExist) (unless flag creates it).
func openRegular(path string, flag int, perm os.FileMode, what string) (*os.File, error) {
	notRegular := func(m fs.FileMode) error {
		if m&fs.ModeSymlink != 0 {
			return fmt.Errorf("the %s %s is a symbolic link, which the registrar does not follow: put the real file there, or point -data at the real location (a linked folder above it is fine)", what, path)
		}
		kind := "mode " + m.Type().String()
		if m.IsDir() {
			kind = "a directory"
		}
		return fmt.Errorf("the %s %s is not a regular file (%s); move it away", what, path, kind)
	}
	// Checked before the open as well, so that a FIFO cannot block it.
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		return nil, notRegular(st.Mode())
	}
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW, perm)
	if errors.Is(err, syscall.ELOOP) {
		return nil, notRegular(fs.ModeSymlink)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(st.Mode())
	}
	return f, nil
}
