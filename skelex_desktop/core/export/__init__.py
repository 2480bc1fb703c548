"""Writers of labelled sets (CSV/JSONL, COCO, YOLO, HF imagefolder, DICOM) and de-identification."""
