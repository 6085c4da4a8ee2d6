ATTACH DATABASE 'archive.db' AS archive;
