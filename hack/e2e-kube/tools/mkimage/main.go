// Command mkimage writes a one-layer image as a docker-archive tar that `ctr images import` accepts, from a
// directory tree: the kube lane has no registry and no Docker, so its pause and busybox images are made
// here. Usage: mkimage -name localhost/x:1 -rootfs DIR -out x.tar -- CMD...
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"time"
)

func layer(root string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		h.Name, h.Uid, h.Gid, h.Uname, h.Gname = filepath.ToSlash(rel), 0, 0, "", ""
		h.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), tw.Close()
}

func main() {
	name := flag.String("name", "", "image reference, e.g. localhost/e2e/pause:1")
	root := flag.String("rootfs", "", "directory to pack as the only layer")
	out := flag.String("out", "", "docker-archive tar to write")
	flag.Parse()
	if *name == "" || *root == "" || *out == "" {
		log.Fatal("-name, -rootfs and -out are required")
	}
	l, err := layer(*root)
	if err != nil {
		log.Fatal(err)
	}
	ld := sha256.Sum256(l)
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": flag.Args(), "Env": []string{"PATH=/bin:/usr/bin:/sbin:/usr/sbin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(ld[:])}},
	})
	cd := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cd[:]) + ".json"
	man, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{*name}, "Layers": []string{"layer/layer.tar"}}})
	f, err := os.Create(*out + ".tmp")
	if err != nil {
		log.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, e := range []struct {
		n string
		b []byte
	}{{cfgName, cfg}, {"layer/layer.tar", l}, {"manifest.json", man}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.n, Mode: 0o644, Size: int64(len(e.b)), ModTime: time.Unix(0, 0)}); err != nil {
			log.Fatal(err)
		}
		if _, err := tw.Write(e.b); err != nil {
			log.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(*out+".tmp", *out); err != nil {
		log.Fatal(err)
	}
}
